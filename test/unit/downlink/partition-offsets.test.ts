import { describe, expect, it } from 'vitest';
import { PartitionOffsets } from '../../../src/downlink/partition-offsets.js';

describe('PartitionOffsets', () => {
  it('commits up to the oldest unsettled record, and past everything once all settle', () => {
    const offsets = new PartitionOffsets();
    expect(offsets.committable()).toBeUndefined();
    const settle = ['10', '11', '12'].map((offset) => offsets.track(offset));
    expect(offsets.committable()).toBe('10');
    expect(offsets.committable()).toBeUndefined(); // unchanged
    settle[1]?.();
    expect(offsets.committable()).toBeUndefined(); // 10 still holds it back
    settle[0]?.();
    expect(offsets.committable()).toBe('12');
    settle[2]?.();
    settle[2]?.(); // settling twice changes nothing
    expect(offsets.committable()).toBe('13');
    expect(offsets.pendingCount).toBe(0);
  });

  it('handles offsets beyond 2^53', () => {
    const offsets = new PartitionOffsets();
    offsets.track('9007199254740993')();
    expect(offsets.committable()).toBe('9007199254740994');
  });
});

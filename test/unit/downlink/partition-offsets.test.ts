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

  it('knows the records handed over by their offset, across decimal lengths', () => {
    const offsets = new PartitionOffsets();
    expect(offsets.handedOver('0')).toBe(false);
    offsets.track('9');
    expect(offsets.handedOver('8')).toBe(true);
    expect(offsets.handedOver('9')).toBe(true);
    expect(offsets.handedOver('10')).toBe(false); // longer, so later (not '10' < '9')
    offsets.track('10');
    expect(offsets.handedOver('9')).toBe(true);
    expect(offsets.handedOver('11')).toBe(false);
    expect(offsets.handedOver('100')).toBe(false);
  });

  it('keeps the oldest unsettled offset while thousands behind it settle', () => {
    const offsets = new PartitionOffsets();
    const settles = Array.from({ length: 5_000 }, (_, i) => offsets.track(String(1_000 + i)));
    const commits: Array<string | undefined> = [];
    for (const [i, settle] of settles.entries()) {
      if (i !== 2_500) settle();
      if (i % 700 === 0) commits.push(offsets.committable());
    }
    // 1001 after the first settled, then held at 3500 (1000 + 2500) from i = 2800 on
    expect(commits).toEqual([
      '1001',
      '1701',
      '2401',
      '3101',
      '3500',
      undefined,
      undefined,
      undefined,
    ]);
    expect(offsets.committable()).toBeUndefined();
    expect(offsets.pendingCount).toBe(1);
    settles[2_500]?.();
    expect(offsets.committable()).toBe('6000');
    offsets.track('6000');
    expect(offsets.committable()).toBeUndefined(); // 6000 is still the one to commit
    expect(offsets.pendingCount).toBe(1);
  });
});

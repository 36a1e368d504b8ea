import { describe, expect, it } from 'vitest';
import { SessionFencing } from '../../../src/cluster/session-fencing.js';

const a1 = { owner: 'a', epoch: 1 };
const b2 = { owner: 'b', epoch: 2 };
const c2 = { owner: 'c', epoch: 2 };

describe('SessionFencing', () => {
  it("applies the owner's updates and a takeover's higher epoch", () => {
    const fencing = new SessionFencing();
    expect(fencing.apply('d1', a1, false)).toBe(true);
    expect(fencing.apply('d1', a1, false)).toBe(true);
    expect(fencing.apply('d1', b2, false)).toBe(true);
    expect(fencing.latest('d1')).toEqual({ owner: 'b', epoch: 2, ended: false });
    expect(fencing.nextEpoch('d1')).toBe(3);
    expect(fencing.nextEpoch('unknown')).toBe(1);
  });

  it("ignores a stale owner's late update and late end (tombstone) after a takeover", () => {
    const fencing = new SessionFencing();
    fencing.apply('d1', a1, false);
    fencing.apply('d1', b2, false);
    expect(fencing.apply('d1', a1, false)).toBe(false);
    expect(fencing.apply('d1', a1, true)).toBe(false);
    expect(fencing.latest('d1')).toEqual({ owner: 'b', epoch: 2, ended: false });
  });

  it('of two claims with the same epoch, the first in the log wins', () => {
    const fencing = new SessionFencing();
    fencing.apply('d1', a1, false);
    expect(fencing.apply('d1', b2, false)).toBe(true);
    expect(fencing.apply('d1', c2, false)).toBe(false);
    // and every later write of the loser too
    expect(fencing.apply('d1', c2, true)).toBe(false);
    expect(fencing.latest('d1')?.owner).toBe('b');
  });

  it('keeps the epoch of an ended session: a late write does not bring it back', () => {
    const fencing = new SessionFencing();
    fencing.apply('d1', a1, false);
    fencing.apply('d1', b2, false);
    fencing.apply('d1', b2, true, 1_000);
    expect(fencing.apply('d1', a1, false)).toBe(false);
    expect(fencing.nextEpoch('d1')).toBe(3);
    fencing.forgetEndedBefore(500);
    expect(fencing.size).toBe(1);
    fencing.forgetEndedBefore(2_000);
    expect(fencing.size).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import {
  FleetLiveness,
  decodeHeartbeat,
  encodeHeartbeat,
  instanceKey,
  instanceOfKey,
} from '../../../src/cluster/fleet-liveness.js';

describe('FleetLiveness', () => {
  it('takes a bridge as gone when it said so or went quiet for the timeout', () => {
    const liveness = new FleetLiveness('b', 1_000);
    liveness.heard('a', { at: 0, state: 'up' }, 0);
    liveness.heard('c', { at: 0, state: 'down' }, 0);
    expect(liveness.alive('a', 999)).toBe(true);
    expect(liveness.alive('a', 1_000)).toBe(false);
    expect(liveness.alive('c', 1)).toBe(false);
    expect(liveness.alive('never-heard-of', 0)).toBe(false);
    expect(liveness.alive('b', 10_000)).toBe(true); // itself
    expect(liveness.lastAlive('a')).toBe(0);
  });

  it('lets one living bridge adopt: the first instance id in order', () => {
    const at = { at: 100, state: 'up' as const };
    const onB = new FleetLiveness('b', 1_000);
    const onC = new FleetLiveness('c', 1_000);
    for (const liveness of [onB, onC]) {
      liveness.heard('a', { at: 0, state: 'down' }, 0);
      liveness.heard('b', at, 100);
      liveness.heard('c', at, 100);
    }
    expect(onB.adopts('a', 200)).toBe(true);
    expect(onC.adopts('a', 200)).toBe(false);
    expect(onB.adopts('c', 200)).toBe(false); // alive
    // b went quiet as well: c adopts both
    expect(onC.adopts('a', 1_200)).toBe(true);
    expect(onC.adopts('b', 1_200)).toBe(true);
  });

  it('encodes heartbeats and their keys', () => {
    expect(decodeHeartbeat(encodeHeartbeat({ at: 5, state: 'down' }))).toEqual({
      at: 5,
      state: 'down',
    });
    expect(decodeHeartbeat('{"v":2}')).toBeUndefined();
    expect(decodeHeartbeat('not json')).toBeUndefined();
    expect(instanceOfKey(instanceKey('bridge-1'))).toBe('bridge-1');
    expect(instanceOfKey('s:bridge-1')).toBeUndefined();
  });
});

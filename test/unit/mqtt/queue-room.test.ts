import { afterEach, describe, expect, it, vi } from 'vitest';
import { QueueRoom } from '../../../src/mqtt/queue-room.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('QueueRoom', () => {
  it('holds up a full session until it has room again, and wakes who waits', async () => {
    const room = new QueueRoom(1_000);
    const session = {};
    expect(room.empty).toBe(true);
    room.filled(session);
    expect(room.holdsUp(session)).toBe(true);
    let woken = false;
    const waiting = room.whenFreed(60_000).then(() => (woken = true));
    room.freed(session);
    await waiting;
    expect(woken).toBe(true);
    expect(room.holdsUp(session)).toBe(false);
    expect(room.empty).toBe(true);
  });

  it('lets a session go once it took nothing for the patience, and holds it again when it takes', () => {
    vi.useFakeTimers();
    const room = new QueueRoom(1_000);
    const session = {};
    room.filled(session);
    vi.advanceTimersByTime(999);
    expect(room.holdsUp(session)).toBe(true);
    vi.advanceTimersByTime(1);
    expect(room.holdsUp(session)).toBe(false);
    room.took(session);
    expect(room.holdsUp(session)).toBe(true);
  });

  it('holds nobody up with a patience of 0', () => {
    const room = new QueueRoom(0);
    const session = {};
    room.filled(session);
    expect(room.empty).toBe(true);
    expect(room.holdsUp(session)).toBe(false);
  });

  it('resolves a wait after its timeout when nothing frees', async () => {
    vi.useFakeTimers();
    const room = new QueueRoom(1_000);
    room.filled({});
    const waiting = room.whenFreed(500);
    vi.advanceTimersByTime(500);
    await expect(waiting).resolves.toBeUndefined();
  });
});

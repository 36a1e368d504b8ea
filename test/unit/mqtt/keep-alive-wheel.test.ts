import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeepAliveWheel, type KeepAliveWatched } from '../../../src/mqtt/keep-alive-wheel.js';

/** A connection that records when the wheel found it due, and may ask for a later deadline. */
function watched(name: string, due: Array<[string, number]>, again?: (now: number) => number) {
  const subject: KeepAliveWatched & { wheel?: KeepAliveWheel } = {
    keepAliveSlot: -1,
    keepAliveDue(now) {
      due.push([name, now]);
      if (again && subject.wheel) subject.wheel.add(subject, again(now));
    },
  };
  return subject;
}

describe('KeepAliveWheel', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('finds each connection due at its deadline, never before, at most one tick after', () => {
    const wheel = new KeepAliveWheel();
    const due: Array<[string, number]> = [];
    wheel.add(watched('a', due), 1_001_500);
    wheel.add(watched('b', due), 1_003_000);
    vi.advanceTimersByTime(1_499);
    expect(due).toEqual([]);
    vi.advanceTimersByTime(251);
    expect(due.map(([name]) => name)).toEqual(['a']);
    expect(due[0]?.[1]).toBeGreaterThanOrEqual(1_001_500);
    vi.advanceTimersByTime(1_500);
    expect(due.map(([name]) => name)).toEqual(['a', 'b']);
    expect(due[1]?.[1]).toBeLessThanOrEqual(1_003_250);
    wheel.stop();
  });

  it('forgets a removed connection, and a new deadline replaces the old one', () => {
    const wheel = new KeepAliveWheel();
    const due: Array<[string, number]> = [];
    const a = watched('a', due);
    const b = watched('b', due);
    wheel.add(a, 1_001_000);
    wheel.add(b, 1_001_000);
    wheel.remove(a);
    wheel.add(b, 1_005_000);
    vi.advanceTimersByTime(4_000);
    expect(due).toEqual([]);
    vi.advanceTimersByTime(1_250);
    expect(due.map(([name]) => name)).toEqual(['b']);
    wheel.stop();
  });

  it('checks again at the later deadline a due connection asks for', () => {
    const wheel = new KeepAliveWheel();
    const due: Array<[string, number]> = [];
    const a = watched('a', due, (now) => now + 2_000);
    a.wheel = wheel;
    wheel.add(a, 1_001_000);
    vi.advanceTimersByTime(7_500);
    expect(due.map(([, now]) => now - 1_000_000)).toEqual([1_000, 3_000, 5_000, 7_000]);
    wheel.stop();
  });

  it('skips a connection that an earlier one in the same slot removed', () => {
    const wheel = new KeepAliveWheel();
    const due: Array<[string, number]> = [];
    const b = watched('b', due);
    const a: KeepAliveWatched = {
      keepAliveSlot: -1,
      keepAliveDue(now) {
        due.push(['a', now]);
        wheel.remove(b); // a's closing ends b (a session taken over)
      },
    };
    wheel.add(a, 1_001_000);
    wheel.add(b, 1_001_000);
    vi.advanceTimersByTime(1_250);
    expect(due.map(([name]) => name)).toEqual(['a']);
    wheel.stop();
  });
});

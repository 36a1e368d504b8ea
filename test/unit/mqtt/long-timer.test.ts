import { afterEach, describe, expect, it, vi } from 'vitest';
import { LongTimer } from '../../../src/mqtt/long-timer.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('LongTimer', () => {
  it('waits delays longer than setTimeout allows (2^31 - 1 ms) instead of firing at once', () => {
    vi.useFakeTimers();
    const fired = vi.fn();
    const thirtyDays = 30 * 24 * 3600 * 1000;
    new LongTimer(thirtyDays, fired);
    vi.advanceTimersByTime(1000);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(thirtyDays - 2000);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1000);
    expect(fired).toHaveBeenCalledOnce();
  });

  it('can be cancelled, also after a re-arm', () => {
    vi.useFakeTimers();
    const fired = vi.fn();
    const timer = new LongTimer(2 ** 31 + 10_000, fired);
    vi.advanceTimersByTime(2 ** 31);
    timer.cancel();
    vi.advanceTimersByTime(60_000);
    expect(fired).not.toHaveBeenCalled();
  });
});

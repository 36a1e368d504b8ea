import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { installRequestQueueTimeout } from '../../../src/kafka/request-queue-timeout.js';

const require = createRequire(import.meta.url);

afterEach(() => {
  vi.restoreAllMocks();
});

/** A request queue's state, run through KafkaJS's (patched) method. */
function scheduledDelay(throttledUntil: number, pending: number): number | undefined {
  const { prototype } = require('kafkajs/src/network/requestQueue/index.js') as {
    prototype: { scheduleCheckPendingRequests(this: unknown): void };
  };
  const spy = vi.spyOn(globalThis, 'setTimeout');
  const queue = {
    throttledUntil,
    throttleCheckTimeoutId: null as unknown,
    pending: Array.from({ length: pending }),
    checkPendingRequests: () => undefined,
  };
  prototype.scheduleCheckPendingRequests.call(queue);
  clearTimeout(queue.throttleCheckTimeoutId as NodeJS.Timeout);
  const delay = spy.mock.calls[0]?.[1];
  spy.mockRestore();
  return delay;
}

describe('KafkaJS request queue timer (Node 24 TimeoutNegativeWarning)', () => {
  it('never asks for a negative delay, and keeps KafkaJS’s delays otherwise', () => {
    expect(installRequestQueueTimeout()).toBe(true);
    // nothing throttled, nothing pending: KafkaJS asked for about minus the epoch
    expect(scheduledDelay(-1, 0)).toBe(1);
    // requests waiting, not throttled: KafkaJS's 10 ms check
    expect(scheduledDelay(-1, 2)).toBe(10);
    // throttled for another 500 ms: that long
    const delay = scheduledDelay(Date.now() + 500, 1) ?? 0;
    expect(delay).toBeGreaterThan(400);
    expect(delay).toBeLessThanOrEqual(500);
  });
});

/**
 * KafkaJS 2.2.4's request queue schedules its next check at `throttledUntil - Date.now()`, which
 * is about minus the epoch when nothing is throttled (`throttledUntil` is -1). Node clamps the
 * delay to 1 ms, but Node 23+ also prints a TimeoutNegativeWarning at every start. This is the
 * same method with the delay clamped by the bridge: the same timing, no warning.
 */
import { createRequire } from 'node:module';
import { isPatchedKafkajs } from './kafkajs-module.js';

const require = createRequire(import.meta.url);

/** KafkaJS's own interval between checks while requests wait and nothing is throttled. */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;

interface RequestQueue {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** Replaces the method; false when KafkaJS is not the version it copies (nothing changed). */
export function installRequestQueueTimeout(): boolean {
  if (!isPatchedKafkajs()) return false;
  const { prototype } = require('kafkajs/src/network/requestQueue/index.js') as {
    prototype: RequestQueue;
  };
  prototype.scheduleCheckPendingRequests = function (this: RequestQueue): void {
    let scheduleAt = this.throttledUntil - Date.now();
    if (this.throttleCheckTimeoutId) return;
    if (this.pending.length > 0) {
      scheduleAt = scheduleAt > 0 ? scheduleAt : CHECK_PENDING_REQUESTS_INTERVAL;
    }
    this.throttleCheckTimeoutId = setTimeout(
      () => {
        this.throttleCheckTimeoutId = null;
        this.checkPendingRequests();
      },
      Math.max(1, scheduleAt),
    );
  };
  return true;
}

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { PendingEntries } from '../../../src/kafka/pending-entries.js';
import type { OutgoingRecord } from '../../../src/kafka/outgoing-record.js';
import { BridgeMetrics } from '../../../src/observability/metrics.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const limits = { maxPendingRecords: 1000, maxPendingBytes: 1_000_000 };

function record(): OutgoingRecord {
  return {
    topic: 't',
    key: null,
    value: Buffer.alloc(256),
    partition: 0,
    timestamp: 0,
    headers: {},
  };
}

describe('pending entries', () => {
  it('lets a settled entry go at once (records, callback), also one settled behind an older one still waiting', async () => {
    const metrics = new BridgeMetrics();
    const pending = new PendingEntries(limits, pino({ level: 'silent' }), metrics);
    const settledRecords: Array<WeakRef<object>> = [];
    // in a function of its own, so that nothing of the test's frame holds them
    const settleSome = (): void => {
      for (let index = 0; index < 3; index++) {
        const records = [record()];
        const entry = pending.add(records, () => undefined);
        settledRecords.push(new WeakRef(records));
        pending.settle(entry, undefined);
      }
    };
    settleSome();
    pending.add([record()], undefined); // still waiting for Kafka
    settleSome(); // behind it
    // WeakRef targets are kept until the current job ends
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    expect(settledRecords.map((ref) => ref.deref())).toEqual(Array(6).fill(undefined));
    expect(metrics.pendingSource?.()).toEqual({ records: 1, bytes: 256 });
  });
});

import { describe, expect, it } from 'vitest';
import {
  canPauseKafka,
  connectedProducer,
  createTopic,
  highWatermarks,
  pauseKafka,
  readRecords,
  resumeKafka,
} from '../support/kafka-helpers.js';

describe('Kafka test harness', () => {
  it('reads back produced records in order, with keys and headers', async () => {
    const topic = await createTopic();
    const producer = await connectedProducer({ idempotent: true });

    await producer.send({
      topic,
      acks: -1,
      messages: [1, 2, 3].map((n) => ({
        key: `key-${n}`,
        value: `value-${n}`,
        headers: { seq: String(n), source: 'harness' },
      })),
    });

    const records = await readRecords(topic, 3, { timeoutMs: 20_000 });
    expect(records.map((r) => r.key?.toString())).toEqual(['key-1', 'key-2', 'key-3']);
    expect(records.map((r) => r.value?.toString())).toEqual(['value-1', 'value-2', 'value-3']);
    expect(records.map((r) => r.offset)).toEqual(['0', '1', '2']);
    expect(records.map((r) => r.headers)).toEqual([
      { seq: '1', source: 'harness' },
      { seq: '2', source: 'harness' },
      { seq: '3', source: 'harness' },
    ]);
    expect(records.every((r) => r.partition === 0 && Number(r.timestamp) > 0)).toBe(true);
    expect(await highWatermarks(topic)).toEqual([3]);
  });

  it.runIf(canPauseKafka())(
    'holds a produce while Kafka is paused until it is resumed',
    async () => {
      const topic = await createTopic('paused');
      const producer = await connectedProducer();
      // Warm up: connection and metadata are in place before the pause.
      await producer.send({ topic, acks: -1, messages: [{ value: 'before' }] });

      await pauseKafka();
      let outcome: 'pending' | 'acked' | Error = 'pending';
      const sending = producer.send({ topic, acks: -1, messages: [{ value: 'during' }] }).then(
        () => {
          outcome = 'acked';
        },
        (error: unknown) => {
          outcome = error instanceof Error ? error : new Error(String(error));
        },
      );

      // Negative check: nothing can prove "never", so give it a short, bounded chance to complete.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(outcome).toBe('pending');

      await resumeKafka();
      await sending;
      expect(outcome).toBe('acked');

      const records = await readRecords(topic, 2);
      expect(records.map((r) => r.value?.toString())).toEqual(['before', 'during']);
    },
  );
});

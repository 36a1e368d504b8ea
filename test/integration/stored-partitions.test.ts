import { describe, expect, it } from 'vitest';
import { installKafkajsPatches } from '../../src/kafka/kafkajs-patches.js';
import { storedWith } from '../../src/kafka/stored-partitions.js';
import { connectedProducer, createTopic } from '../support/kafka-helpers.js';

/*
 * The producer pipeline sends several partitions in one sendBatch and, when it fails, re-sends
 * only the partitions whose Produce request did not succeed: KafkaJS's broker tells which did
 * (src/kafka/stored-partitions.ts). Against a real Kafka, with KafkaJS's real broker.
 */
describe('partitions stored by a sendBatch', () => {
  it('marks the first message of each partition of a Produce request that succeeded, none of one that failed', async () => {
    expect(installKafkajsPatches().storedPartitions).toBe(true);
    const topic = await createTopic('stored', 3);
    const small = await createTopic('small', 1, {
      configEntries: [{ name: 'max.message.bytes', value: '1000' }],
    });
    const producer = await connectedProducer({ idempotent: true, maxInFlightRequests: 1 });

    const messages = [0, 1, 2].map((partition) => ({ partition, value: `v${partition}` }));
    const results = await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages }] });
    expect(results).toHaveLength(3);
    expect(messages.map((message) => storedWith(message))).toEqual([true, true, true]);

    // one request to the one broker: Kafka refuses `big`, so KafkaJS fails the whole request
    // and moves no sequence number on: neither partition counts as stored
    const fits = { partition: 0, value: 'fits' };
    const big = { partition: 0, value: 'x'.repeat(5_000) };
    await expect(
      producer.sendBatch({
        acks: -1,
        topicMessages: [
          { topic, messages: [fits] },
          { topic: small, messages: [big] },
        ],
      }),
    ).rejects.toThrow(/too large|larger/i);
    expect(storedWith(fits)).toBe(false);
    expect(storedWith(big)).toBe(false);
  });
});

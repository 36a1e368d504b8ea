import { randomBytes } from 'node:crypto';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  PartitionChoice,
  chosenPartitioner,
  murmur2,
} from '../../../src/kafka/partition-choice.js';

function metadata(count: number): PartitionMetadata[] {
  return Array.from({ length: count }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
}

const record = (key: string | null, topic = 't') => ({
  topic,
  key,
  value: null,
  partition: undefined,
  timestamp: 0,
  headers: {},
});

describe('PartitionChoice', () => {
  it('chooses the partition KafkaJS default partitioner (murmur2, as the Java client) chooses', () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    const choice = new PartitionChoice();
    const keys = [
      '',
      'a',
      'ab',
      'abc',
      'abcd',
      'device-17',
      'häßlich 𝄞',
      'x'.repeat(1023),
      'y'.repeat(1500),
      ...Array.from({ length: 2000 }, (_, index) =>
        randomBytes(1 + (index % 40)).toString(index % 2 === 0 ? 'hex' : 'latin1'),
      ),
    ];
    for (const count of [1, 3, 6, 7, 64]) {
      for (const key of keys) {
        const expected = kafkajs({
          topic: 't',
          partitionMetadata: metadata(count),
          message: { key, value: null },
        });
        expect(choice.of(record(key), count), `${JSON.stringify(key)} of ${count}`).toBe(expected);
      }
    }
  });

  it('matches Kafka’s murmur2 for known keys', () => {
    // Kafka's UtilsTest.testMurmur2
    const cases: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ];
    for (const [key, hash] of cases) expect(murmur2(Buffer.from(key), key.length)).toBe(hash);
  });

  it('goes round robin per topic for records without a key', () => {
    const choice = new PartitionChoice();
    expect([0, 1, 2, 3].map(() => choice.of(record(null, 'a'), 3))).toEqual([0, 1, 2, 0]);
    expect(choice.of(record(null, 'b'), 3)).toBe(0);
  });
});

describe('chosenPartitioner', () => {
  it('keeps the partition a message names, else partitions as KafkaJS does', () => {
    const partitioner = chosenPartitioner();
    const kafkajs = Partitioners.DefaultPartitioner();
    const partitionMetadata = metadata(6);
    expect(
      partitioner({
        topic: 't',
        partitionMetadata,
        message: { key: 'k', value: null, partition: 4 },
      }),
    ).toBe(4);
    expect(partitioner({ topic: 't', partitionMetadata, message: { key: 'k', value: null } })).toBe(
      kafkajs({ topic: 't', partitionMetadata, message: { key: 'k', value: null } }),
    );
  });
});

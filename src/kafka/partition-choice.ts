import { Partitioners, type PartitionMetadata } from 'kafkajs';
import type { OutgoingRecord } from './outgoing-record.js';

/**
 * The partition of a record that names none: murmur2 of the key as Kafka's Java client computes
 * it (KafkaJS's default partitioner, so other producers agree), round robin per topic for
 * records without a key.
 */
export class PartitionChoice {
  readonly #partitioner = Partitioners.DefaultPartitioner();
  readonly #roundRobin = new Map<string, number>();

  of(record: OutgoingRecord, count: number): number {
    if (record.key === null) {
      const next = this.#roundRobin.get(record.topic) ?? 0;
      this.#roundRobin.set(record.topic, (next + 1) % count);
      return next % count;
    }
    return this.#partitioner({
      topic: record.topic,
      partitionMetadata: partitionsOf(count),
      message: { key: record.key, value: null },
    });
  }
}

/** Partition metadata of a topic with `count` partitions, all with a leader (for the partitioner). */
const metadataByCount = new Map<number, PartitionMetadata[]>();
function partitionsOf(count: number): PartitionMetadata[] {
  let metadata = metadataByCount.get(count);
  if (!metadata) {
    metadata = Array.from({ length: count }, (_, partitionId) => ({
      partitionId,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    }));
    metadataByCount.set(count, metadata);
  }
  return metadata;
}

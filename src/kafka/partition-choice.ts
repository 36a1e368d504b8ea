import type { ICustomPartitioner } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import type { OutgoingRecord } from './outgoing-record.js';

/**
 * The partition of a record that names none: murmur2 of the key as Kafka's Java client computes
 * it (KafkaJS's default partitioner, so other producers agree), round robin per topic for
 * records without a key.
 */
export class PartitionChoice {
  readonly #roundRobin = new Map<string, number>();

  of(record: OutgoingRecord, count: number): number {
    if (record.key === null) {
      const next = this.#roundRobin.get(record.topic) ?? 0;
      this.#roundRobin.set(record.topic, (next + 1) % count);
      return next % count;
    }
    return (murmur2Of(record.key) & 0x7fffffff) % count;
  }
}

/**
 * The producer's partitioner: the partition the pipeline chose (it always names one), else
 * KafkaJS's default. KafkaJS calls it for every message of every request; its default
 * partitioner filters the partition list on each call before looking at `message.partition`.
 */
export const chosenPartitioner: ICustomPartitioner = () => {
  const fallback = Partitioners.DefaultPartitioner();
  return (args) => {
    return args.message.partition ?? fallback(args);
  };
};

/** Keys up to this many UTF-16 units are encoded into a buffer kept for it, not a new one. */
const SCRATCH_UNITS = 1024;
const scratch = Buffer.allocUnsafe(SCRATCH_UNITS * 3);

/** murmur2 of a key's UTF-8 bytes. */
function murmur2Of(key: string | Buffer): number {
  if (Buffer.isBuffer(key)) return murmur2(key, key.length);
  if (key.length <= SCRATCH_UNITS) return murmur2(scratch, scratch.write(key, 0));
  const bytes = Buffer.from(key);
  return murmur2(bytes, bytes.length);
}

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) of `data[0, length)`, in 32-bit
 * integer arithmetic as Java computes it: the same as KafkaJS's BigInt-based one, without an
 * allocation per four bytes.
 */
export function murmur2(data: Buffer, length: number): number {
  let h = SEED ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k =
      (data[i4] as number) |
      ((data[i4 + 1] as number) << 8) |
      ((data[i4 + 2] as number) << 16) |
      ((data[i4 + 3] as number) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest > 0) {
    if (rest === 3) h ^= (data[tail + 2] as number) << 16;
    if (rest >= 2) h ^= (data[tail + 1] as number) << 8;
    h ^= data[tail] as number;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

import type { KafkaMessage } from 'kafkajs';

/** Header naming the write of a bridge process that made a record: `<process id>:<sequence>`. */
export const WRITE_HEADER = 'bridge-write';

/**
 * Which records of the retained topic a bridge applies, so that bridges that
 * share the topic end with what Kafka holds last for each MQTT topic.
 *
 * Kafka's order decides between writers: a topic's records are in one
 * partition. A bridge applies its own changes at once. While some of its
 * changes to a topic are on their way it applies no record of that topic
 * (Kafka placed them before its own change) but remembers the last one; once
 * its changes are all read back, the last one read back applies (Kafka's
 * latest). If a change of its own fails, the remembered record applies instead. A record read
 * twice (KafkaJS fetches again after a rebalance) is applied once.
 */
export class RetainedConvergence {
  readonly #writer: string;
  #writes = 0;
  /** Per MQTT topic, own writes not read back yet, and the last record read meanwhile. */
  readonly #pending = new Map<string, { writes: Set<string>; last: KafkaMessage | undefined }>();
  /** Per partition, the offset of the last record read. */
  readonly #read = new Map<number, bigint>();

  constructor(writer: string) {
    this.#writer = writer;
  }

  /** An own change of `topic` is about to be written: the id its record carries (WRITE_HEADER). */
  writing(topic: string): string {
    const write = `${this.#writer}:${this.#writes++}`;
    const pending = this.#pending.get(topic) ?? { writes: new Set<string>(), last: undefined };
    pending.writes.add(write);
    this.#pending.set(topic, pending);
    return write;
  }

  /** A record was read: whether to apply it. */
  read(partition: number, record: KafkaMessage): boolean {
    const offset = BigInt(record.offset);
    const before = this.#read.get(partition);
    if (before !== undefined && offset <= before) return false;
    this.#read.set(partition, offset);
    const topic = record.key?.toString('utf8');
    if (topic === undefined || topic === '') return false;
    const pending = this.#pending.get(topic);
    if (pending === undefined) return true;
    pending.last = record;
    const write = record.headers?.[WRITE_HEADER]?.toString();
    if (write === undefined || !pending.writes.delete(write) || pending.writes.size > 0)
      return false;
    // All read back: this one is Kafka's latest. Usually this bridge has it already; not when a
    // later own write failed (refused, too large) after it.
    this.#pending.delete(topic);
    return true;
  }

  /** An own write failed: the record to apply now (the last one read meanwhile), if any. */
  failed(topic: string, write: string): KafkaMessage | undefined {
    const pending = this.#pending.get(topic);
    if (!pending?.writes.delete(write) || pending.writes.size > 0) return undefined;
    this.#pending.delete(topic);
    return pending.last;
  }
}

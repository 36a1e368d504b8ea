import type { CompressionTypes, Producer } from 'kafkajs';
import type { Logger } from '../observability/logger.js';
import type { BridgeMetrics } from '../observability/metrics.js';
import { ReasonCode } from '../mqtt/reason-codes.js';
import {
  isDuplicateSequence,
  isTransientProduceError,
  needsNewProducerId,
  produceErrorCause,
  produceFailureOf,
  type ProduceFailure,
} from './produce-failure.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { OutgoingRecord, Settle } from './outgoing-record.js';
import { PartitionChoice } from './partition-choice.js';
import { newLane, takeBatch, toMessage, type Item, type Lane } from './partition-lane.js';
import { PendingEntries } from './pending-entries.js';

export type { OutgoingRecord, Settle } from './outgoing-record.js';

export interface PipelineOptions {
  /** Wait this long to fill a batch when nothing is in flight; 0 sends on the next tick. */
  lingerMs: number;
  batchMaxRecords: number;
  batchMaxBytes: number;
  /** Bytes of values waiting for Kafka at which the pipeline reports itself congested. */
  maxPendingBytes: number;
  /** Records waiting for Kafka at which the pipeline reports itself congested. */
  maxPendingRecords: number;
  /** Records not sent within this long (Kafka unreachable) fail with 0x97; 0: wait for ever. */
  ackTimeoutMs: number;
  /** Compression of the record batches. */
  compression: CompressionTypes;
}

/** Partition counts of topics, looked up in Kafka (see PartitionCounts). */
export interface PartitionCountSource {
  /** The count if known, null when the last lookup failed, undefined when never looked up. */
  cached(topic: string): number | null | undefined;
  /** Whether the last lookup found that Kafka has no such topic. */
  missing(topic: string): boolean;
  /** Why the last lookup failed. */
  error(topic: string): string | undefined;
  /** Looks the topic up; never rejects. */
  fetch(topic: string): Promise<void>;
}

/** Longest pause between attempts while Kafka is unreachable. */
const MAX_BACKOFF_MS = 5_000;
const FIRST_BACKOFF_MS = 250;

/**
 * Turns many publishes into few produce requests, one partition per request.
 *
 * Each partition is a lane: one request in flight at a time, and whatever arrives meanwhile
 * forms its next batch, so the records of a partition keep the order they were enqueued in,
 * across retries too, and batches grow as large as Kafka's latency demands. Lanes of
 * different partitions go in parallel (KafkaJS still sends one request per broker at a time).
 *
 * One partition per request makes every outcome exact on a cluster: a request either stored
 * its records or, failing, stored none of them and left the idempotent producer's sequence
 * number where it was. So a failure re-sends exactly the records that were not stored, with
 * the same sequence numbers (Kafka drops a retry of a batch it has), and records another
 * broker acknowledged are never sent again. (A request spanning brokers fails as a whole
 * while some brokers stored their part; re-sending it wrote those records twice.)
 *
 * The pipeline chooses partitions itself (murmur2 of the key as Kafka's Java client, or round
 * robin for records without a key) from partition counts it looks up, so a retry goes to the
 * same partition, and a record for a topic Kafka does not have fails (dead-letter path)
 * instead of having Kafka create the topic.
 */
export class ProducerPipeline {
  #producer: Producer;
  /** A new, unconnected producer (same settings) when the idempotent state is lost. */
  readonly #newProducer: () => Producer;
  readonly #partitionCounts: PartitionCountSource;
  /** False after a new producer replaced a lost one, until it connects. */
  #producerConnected = true;
  #closed = false;
  readonly #options: PipelineOptions;
  readonly #log: Logger;
  readonly #metrics: BridgeMetrics;
  /** Lanes by topic, then by partition (no key string built per record). */
  readonly #lanes = new Map<string, Map<number, Lane>>();
  /** Records, in order, of topics whose partition count is being looked up. */
  readonly #waiting = new Map<string, Item[]>();
  readonly #pending: PendingEntries;
  /** Requests in flight. */
  #inFlight = 0;
  /** The producer's connect in progress, shared by all who wait for it. */
  #connecting: Promise<void> | undefined;
  /** A request failed for want of a new producer id: no new request until it is replaced. */
  #renewalDue = false;
  /** False from a failure to reach Kafka until the next success. */
  #reachable = true;
  readonly #failureLog: RateLimitedLog;
  readonly #timeoutSweep: NodeJS.Timeout | undefined;
  readonly #partitionChoice = new PartitionChoice();

  /** `producer` is connected; `newProducer` makes another like it (see #renewProducer). */
  constructor(
    producer: Producer,
    newProducer: () => Producer,
    partitionCounts: PartitionCountSource,
    options: PipelineOptions,
    log: Logger,
    metrics: BridgeMetrics,
  ) {
    this.#producer = producer;
    this.#newProducer = newProducer;
    this.#partitionCounts = partitionCounts;
    this.#options = options;
    this.#log = log;
    this.#metrics = metrics;
    this.#failureLog = new RateLimitedLog(log);
    this.#pending = new PendingEntries(options, log, metrics);
    if (options.ackTimeoutMs > 0) {
      this.#timeoutSweep = setInterval(
        () => {
          this.#failOverdue();
        },
        Math.min(1_000, options.ackTimeoutMs),
      ).unref();
    }
  }

  enqueue(records: OutgoingRecord[], settle: Settle | undefined): void {
    const entry = this.#pending.add(records, settle);
    if (records.length === 0) {
      this.#pending.settle(entry, undefined);
      return;
    }
    for (const record of records) this.#route({ record, entry });
  }

  /** How long the oldest record not yet acknowledged has waited (0 when none waits). */
  get oldestPendingMs(): number {
    return this.#pending.oldestMs;
  }

  /** Whether the last attempt to produce reached Kafka (true before the first). */
  get kafkaReachable(): boolean {
    return this.#reachable;
  }

  /**
   * Called with true when records waiting for Kafka reach `maxPendingRecords`
   * or `maxPendingBytes`, and with false once both are back under half.
   */
  onCongestion(listener: (congested: boolean) => void): void {
    this.#pending.onCongestion(listener);
  }

  /** Resolves once every record enqueued so far is settled: stored, refused or timed out. */
  idle(): Promise<void> {
    return this.#pending.idle();
  }

  /** Sends nothing more and stops the timeout sweep (records still queued are left as they are). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timeoutSweep);
  }

  /** Disconnects the producer in use (after close, when nothing is sent any more). */
  async disconnect(): Promise<void> {
    await this.#producer.disconnect();
  }

  // --- partitions -------------------------------------------------------------------------

  /** Into its partition's lane, or behind the records waiting for its topic's partition count. */
  #route(item: Item): void {
    const { topic } = item.record;
    const waiting = this.#waiting.get(topic);
    if (waiting) {
      waiting.push(item);
      return;
    }
    const count = this.#partitionCounts.cached(topic);
    if (typeof count === 'number') {
      this.#toLane(item, count);
    } else if (count === null && this.#partitionCounts.missing(topic)) {
      this.#refuseMissing([item]);
    } else {
      this.#waiting.set(topic, [item]);
      void this.#lookUp(topic);
    }
  }

  /** Looks a topic's partition count up until it is known, Kafka says there is no such topic, or nothing waits any more. */
  async #lookUp(topic: string): Promise<void> {
    let backoffMs = 0;
    for (;;) {
      await this.#partitionCounts.fetch(topic);
      const items = this.#waiting.get(topic) ?? [];
      const count = this.#partitionCounts.cached(topic);
      if (this.#closed) return;
      if (typeof count === 'number' || this.#partitionCounts.missing(topic)) {
        this.#waiting.delete(topic);
        if (typeof count === 'number') {
          for (const item of items) this.#toLane(item, count);
        } else {
          this.#refuseMissing(items);
        }
        return;
      }
      // Kafka unreachable: the records wait (until the ack timeout refuses them)
      const open = items.filter((item) => !item.entry.settled);
      if (open.length === 0) {
        this.#waiting.delete(topic);
        return;
      }
      this.#waiting.set(topic, open);
      this.#failureLog.warn(
        'partition-lookup',
        { topic, error: this.#partitionCounts.error(topic) },
        'partition count of a Kafka topic unknown: records wait',
      );
      backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(FIRST_BACKOFF_MS, backoffMs * 2));
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
    }
  }

  #refuseMissing(items: Item[]): void {
    const topic = items[0]?.record.topic ?? '';
    this.#failureLog.warn(
      'missing-topic',
      { topic },
      'Kafka has no such topic: records refused (the bridge never creates topics while producing)',
    );
    this.#metrics.kafkaProduceFailures.inc();
    this.#refuse(items, {
      reasonCode: ReasonCode.ImplementationSpecificError,
      reason: `Kafka topic "${topic}" does not exist`,
    });
  }

  #toLane(item: Item, count: number): void {
    const { record } = item;
    const partition = record.partition ?? this.#partitionChoice.of(record, count);
    if (partition >= count) {
      this.#refuse([item], {
        reasonCode: ReasonCode.ImplementationSpecificError,
        reason: `partition ${partition} is out of range: Kafka topic "${record.topic}" has ${count} partitions`,
      });
      return;
    }
    // the same partition for every attempt, also when the count changes meanwhile
    record.partition = partition;
    let lanes = this.#lanes.get(record.topic);
    if (!lanes) {
      lanes = new Map();
      this.#lanes.set(record.topic, lanes);
    }
    let lane = lanes.get(partition);
    if (!lane) {
      lane = newLane(record.topic, partition);
      lanes.set(partition, lane);
    }
    lane.queue.push(item);
    this.#schedule(lane);
  }

  // --- sending ----------------------------------------------------------------------------

  #schedule(lane: Lane): void {
    if (lane.inFlight || lane.scheduled || this.#renewalDue) return;
    lane.scheduled = true;
    const run = (): void => {
      lane.scheduled = false;
      void this.#sendLane(lane);
    };
    const delay = Math.max(this.#options.lingerMs, lane.backoffMs);
    if (delay > 0) setTimeout(run, delay);
    else setImmediate(run);
  }

  async #sendLane(lane: Lane): Promise<void> {
    if (this.#closed || this.#renewalDue) return;
    const items = takeBatch(lane, this.#options);
    if (items.length === 0) {
      this.#dropIfEmpty(lane);
      return;
    }
    lane.inFlight = true;
    this.#inFlight++;
    try {
      const notAttempted = await this.#attempt(lane, items);
      // behind the retry batch, in their order
      if (notAttempted) lane.queue.unshift(...notAttempted);
    } finally {
      lane.inFlight = false;
      this.#inFlight--;
    }
    // a request of this lane or another may have asked for a new producer meanwhile
    if (this.#renewalAsked()) {
      if (this.#inFlight === 0) await this.#renewProducer();
      return;
    }
    if (lane.queue.length > 0 || lane.retry) this.#schedule(lane);
    else this.#dropIfEmpty(lane);
  }

  /**
   * Sends the items (one partition) in one request. Undefined when done with them (stored, or
   * refused for good); else Kafka was unreachable: the items that failed are the lane's retry
   * batch, tried again after a backoff (until the ack timeout refuses them), and the items
   * returned were not attempted. Refused for good: the batch is split in halves until the
   * record Kafka refuses is alone, so that one bad record does not fail its neighbours; it fails
   * with Kafka's reason.
   */
  async #attempt(lane: Lane, items: Item[]): Promise<Item[] | undefined> {
    // a half after one that asked for a new producer waits for it
    if (this.#renewalAsked()) return items;
    const started = performance.now();
    try {
      if (!this.#producerConnected) await this.#connectProducer();
      const results = await this.#producer.sendBatch({
        acks: -1,
        compression: this.#options.compression,
        topicMessages: [{ topic: lane.topic, messages: items.map(toMessage) }],
      });
      // KafkaJS sends nothing, and says so by silence, for a partition its metadata lacks yet
      // (a topic that has just grown): not stored, so sent again
      if (!results.some((result) => result.partition === lane.partition)) {
        throw new PartitionNotInMetadata(lane.topic, lane.partition);
      }
    } catch (error) {
      if (isDuplicateSequence(error)) {
        this.#renewalDue = true;
        this.#stored(lane, items, started);
        return undefined;
      }
      if (isTransientProduceError(error)) {
        this.#unreachable(error, lane);
        if (needsNewProducerId(error)) this.#renewalDue = true;
        lane.retry = items;
        return [];
      }
      if (items.length > 1) {
        this.#log.debug({ err: error, records: items.length }, 'batch refused; split in halves');
        const half = Math.ceil(items.length / 2);
        const rest = items.slice(half);
        const notAttempted = await this.#attempt(lane, items.slice(0, half));
        if (notAttempted) return [...notAttempted, ...rest];
        return this.#attempt(lane, rest);
      }
      this.#reached(lane);
      this.#failureLog.warn(
        produceErrorCause(error),
        { err: error, topic: lane.topic },
        'produce refused',
      );
      this.#metrics.kafkaProduceFailures.inc();
      const failure = produceFailureOf(error);
      for (const { entry } of items) this.#pending.settle(entry, failure);
      return undefined;
    }
    this.#stored(lane, items, started);
    return undefined;
  }

  /** Kafka has the items: their entries settle once all their records are stored. */
  #stored(lane: Lane, items: Item[], started: number): void {
    this.#reached(lane);
    this.#metrics.kafkaProduceSeconds.observe((performance.now() - started) / 1000);
    this.#metrics.kafkaBatchRecords.observe(items.length);
    this.#metrics.kafkaRecordsProduced.inc(items.length);
    for (const { entry } of items) this.#pending.acknowledge(entry);
  }

  #unreachable(error: unknown, lane: Lane): void {
    this.#reachable = false;
    lane.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(FIRST_BACKOFF_MS, lane.backoffMs * 2));
    this.#metrics.kafkaProduceRetries.inc();
    this.#failureLog.warn(
      produceErrorCause(error),
      { err: error, retryInMs: lane.backoffMs },
      'Kafka unreachable: acknowledgements held, retrying',
    );
  }

  #renewalAsked(): boolean {
    return this.#renewalDue;
  }

  #reached(lane: Lane): void {
    if (!this.#reachable) this.#log.info('Kafka reachable again');
    this.#reachable = true;
    lane.backoffMs = 0;
  }

  /**
   * After a broker restart Kafka may have lost the idempotent producer's state (out-of-order
   * sequence number, unknown producer id). A KafkaJS producer keeps its producer id and
   * sequence numbers across reconnects, so a new producer takes its place once no request is
   * in flight: it gets a new producer id, and sequence numbers start again.
   */
  async #renewProducer(): Promise<void> {
    this.#log.warn('idempotent producer state lost (broker restart?): starting a new producer');
    await this.#producer.disconnect().catch(() => undefined);
    if (this.#closed) return;
    this.#producer = this.#newProducer();
    this.#producerConnected = false;
    this.#renewalDue = false;
    // at once, so that readiness sees a connected producer also when nothing is sent
    await this.#connectProducer().catch((error: unknown) => {
      this.#log.warn({ err: error }, 'new producer not connected yet; trying with the next send');
    });
    for (const lane of this.#allLanes()) {
      if (lane.queue.length > 0 || lane.retry) this.#schedule(lane);
      else this.#dropIfEmpty(lane);
    }
  }

  /** Connects the producer in use, once however many ask at the same time. */
  #connectProducer(): Promise<void> {
    this.#connecting ??= this.#connectOnce().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connectOnce(): Promise<void> {
    const producer = this.#producer;
    await producer.connect();
    if (this.#closed) {
      await producer.disconnect();
      return;
    }
    if (producer === this.#producer) this.#producerConnected = true;
  }

  #dropIfEmpty(lane: Lane): void {
    if (lane.queue.length > 0 || lane.retry || lane.inFlight || lane.scheduled) return;
    const lanes = this.#lanes.get(lane.topic);
    if (lanes?.get(lane.partition) !== lane) return;
    lanes.delete(lane.partition);
    if (lanes.size === 0) this.#lanes.delete(lane.topic);
  }

  /** Every lane (a copy: lanes may be dropped meanwhile). */
  #allLanes(): Lane[] {
    const all: Lane[] = [];
    for (const lanes of this.#lanes.values()) all.push(...lanes.values());
    return all;
  }

  // --- settling ---------------------------------------------------------------------------

  /** Fails the entries of queued `items`, which leave the pipeline unsent. */
  #refuse(items: Item[], failure: ProduceFailure): void {
    for (const { entry } of items) this.#pending.settle(entry, failure);
  }

  /**
   * Entries older than ackTimeoutMs fail with 0x97 (quota exceeded): queued records are
   * dropped, and those of a request still in flight (Kafka not answering) are answered now —
   * should Kafka write them after all, the device's retransmission makes a duplicate, never a
   * loss.
   */
  #failOverdue(): void {
    const overdue = this.#pending.overdue(Date.now() - this.#options.ackTimeoutMs);
    if (overdue.length === 0) return;
    const records = overdue.reduce((sum, entry) => sum + entry.records.length, 0);
    this.#log.warn(
      { records },
      `records not acknowledged by Kafka within ${this.#options.ackTimeoutMs} ms: refused`,
    );
    for (const entry of overdue) {
      this.#pending.settle(entry, {
        reasonCode: ReasonCode.QuotaExceeded,
        reason: `Kafka did not acknowledge within ${this.#options.ackTimeoutMs} ms`,
        timedOut: true,
      });
    }
    // their queued records leave the lanes now (a retry batch goes as it is: sequence numbers)
    for (const lane of this.#allLanes()) {
      lane.queue = lane.queue.filter((item) => !item.entry.settled);
      this.#dropIfEmpty(lane);
    }
  }
}

/** A partition the producer's metadata does not have yet: nothing was sent, it is sent again. */
class PartitionNotInMetadata extends Error {
  constructor(topic: string, partition: number) {
    super(`partition ${partition} of ${topic} is not in the producer's metadata yet`);
    this.name = 'PartitionNotInMetadata';
  }
}

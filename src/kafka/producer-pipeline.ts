import type { CompressionTypes, Message, Producer, TopicMessages } from 'kafkajs';
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
import {
  newLane,
  takeBatch,
  toMessage,
  type Batch,
  type Item,
  type Lane,
} from './partition-lane.js';
import { PendingEntries } from './pending-entries.js';
import { partitionOutcomesKnown, storedWith } from './stored-partitions.js';

export type { OutgoingRecord, Settle } from './outgoing-record.js';

export interface PipelineOptions {
  /**
   * After a produce response, the next request waits this long from it to fill its batches
   * (under load: fewer, larger requests); records that find no response that recent go on the
   * next tick. 0: always on the next tick.
   */
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
 * Most bytes of records in one request of several partitions (Kafka refuses requests over its
 * socket.request.max.bytes, 100 MiB by default); the lanes beyond go in a request of their own.
 */
const REQUEST_MAX_BYTES = 16 * 2 ** 20;

/**
 * Turns many publishes into few produce requests.
 *
 * Each partition is a lane: one batch in flight at a time, and whatever arrives meanwhile forms
 * its next batch, so the records of a partition keep the order they were enqueued in, across
 * retries too, and batches grow as large as Kafka's latency demands. A request carries the next
 * batch of every lane that has one and none in flight: on one broker, one round trip for all
 * partitions instead of one per partition (KafkaJS sends one request per broker at a time).
 *
 * Every outcome is exact per partition. A Produce request to a broker either stored all its
 * partitions' records or, failing, left the idempotent producer's sequence numbers where they
 * were; a request spanning brokers can fail on one while others stored their part, and the
 * pipeline learns which those were (stored-partitions.ts). So a failure re-sends exactly the
 * batches that were not stored, each as it was, with the same sequence numbers (Kafka drops
 * a retry of a batch it has), and records a broker acknowledged are never sent again. Where
 * KafkaJS is not the version that tells, each request carries one partition.
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
  /** Lanes with records to send and no request in flight: the next request takes them all. */
  readonly #ready = new Set<Lane>();
  #flushScheduled = false;
  /** When the last produce request ended (performance.now()): the linger counts from it. */
  #lastResponseAt = Number.NEGATIVE_INFINITY;
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

  /** The lane goes in the next request: at once (or after the linger), or after its backoff. */
  #schedule(lane: Lane): void {
    if (lane.inFlight || lane.scheduled || this.#renewalDue) return;
    lane.scheduled = true;
    if (lane.backoffMs > 0) {
      setTimeout(() => {
        this.#makeReady(lane);
      }, lane.backoffMs);
    } else {
      this.#makeReady(lane);
    }
  }

  #makeReady(lane: Lane): void {
    this.#ready.add(lane);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    const run = (): void => {
      this.#flushScheduled = false;
      this.#flush();
    };
    const linger = this.#options.lingerMs - (performance.now() - this.#lastResponseAt);
    if (linger > 0) setTimeout(run, linger);
    else setImmediate(run);
  }

  /**
   * Sends the next batch of every ready lane: all in one request (KafkaJS splits it per broker)
   * up to REQUEST_MAX_BYTES, or one request per lane where the outcome of each partition of a
   * failed request cannot be told (see stored-partitions.ts).
   */
  #flush(): void {
    const lanes = [...this.#ready];
    this.#ready.clear();
    const together = partitionOutcomesKnown();
    let request: Batch[] = [];
    let bytes = 0;
    for (const lane of lanes) {
      lane.scheduled = false;
      if (this.#closed || this.#renewalDue) continue;
      const batch = takeBatch(lane, this.#options);
      if (batch.items.length === 0) {
        this.#dropIfEmpty(lane);
        continue;
      }
      if (request.length > 0 && (!together || bytes + batch.bytes > REQUEST_MAX_BYTES)) {
        void this.#send(request);
        request = [];
        bytes = 0;
      }
      request.push(batch);
      bytes += batch.bytes;
    }
    if (request.length > 0) void this.#send(request);
  }

  async #send(request: Batch[]): Promise<void> {
    for (const { lane } of request) lane.inFlight = true;
    this.#inFlight++;
    try {
      if (request.length === 1) {
        const [{ lane, items }] = request as [Batch];
        this.#requeue(lane, await this.#attempt(lane, items));
      } else {
        await this.#attemptTogether(request);
      }
    } finally {
      for (const { lane } of request) lane.inFlight = false;
      this.#inFlight--;
      this.#lastResponseAt = performance.now();
    }
    // a request of these lanes or another may have asked for a new producer meanwhile
    if (this.#renewalAsked()) {
      if (this.#inFlight === 0) await this.#renewProducer();
      return;
    }
    for (const { lane } of request) {
      if (lane.queue.length > 0 || lane.retry) this.#schedule(lane);
      else this.#dropIfEmpty(lane);
    }
  }

  /** Items of the lane not attempted go back to its front, behind its retry batch, in order. */
  #requeue(lane: Lane, notAttempted: Item[] | undefined): void {
    if (notAttempted && notAttempted.length > 0) lane.queue.unshift(...notAttempted);
  }

  /**
   * Sends the batches of several partitions in one `sendBatch`. Partitions whose Produce request
   * succeeded are stored, also when another broker's failed. When Kafka was unreachable, the
   * others are their lanes' retry batches, sent again as they are. Any other failure (a record
   * refused, or the idempotent producer's state lost) does not say which partition it was: the
   * others are then sent again one partition per request, with the same producer and so the
   * same sequence numbers (Kafka acknowledges a batch it has without writing it twice), which
   * tells each partition's outcome exactly before a new producer may take over.
   */
  async #attemptTogether(request: Batch[]): Promise<void> {
    if (this.#renewalAsked()) {
      for (const { lane, items } of request) this.#requeue(lane, items);
      return;
    }
    const started = performance.now();
    const messages = request.map(({ items }) => items.map(toMessage));
    let failure: unknown;
    try {
      if (!this.#producerConnected) await this.#connectProducer();
      await this.#producer.sendBatch({
        acks: -1,
        compression: this.#options.compression,
        topicMessages: byTopic(request, messages),
      });
    } catch (error) {
      failure = error;
    }
    const unsettled: Batch[] = [];
    request.forEach((batch, index) => {
      const first = messages[index]?.[0];
      if (first && storedWith(first)) this.#stored(batch.lane, batch.items, started);
      else unsettled.push(batch);
    });
    const [firstUnsettled] = unsettled;
    if (!firstUnsettled) return;
    // sent whole, yet a partition was not: KafkaJS's metadata lacks it (a topic that has just grown)
    const error =
      failure ??
      new PartitionNotInMetadata(firstUnsettled.lane.topic, firstUnsettled.lane.partition);
    if (isTransientProduceError(error) && !needsNewProducerId(error)) {
      this.#unreachable(
        error,
        unsettled.map(({ lane }) => lane),
      );
      for (const { lane, items } of unsettled) lane.retry = items;
      return;
    }
    // all start before any of them can ask for a new producer
    const outcomes = await Promise.all(
      unsettled.map(({ lane, items }) => this.#attempt(lane, items)),
    );
    unsettled.forEach(({ lane }, index) => {
      this.#requeue(lane, outcomes[index]);
    });
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
        this.#unreachable(error, [lane]);
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

  #unreachable(error: unknown, lanes: Lane[]): void {
    this.#reachable = false;
    let retryInMs = 0;
    for (const lane of lanes) {
      lane.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(FIRST_BACKOFF_MS, lane.backoffMs * 2));
      retryInMs = Math.max(retryInMs, lane.backoffMs);
    }
    this.#metrics.kafkaProduceRetries.inc();
    this.#failureLog.warn(
      produceErrorCause(error),
      { err: error, retryInMs },
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

/** The records of one topic, in each partition's order, as one `sendBatch` takes them. */
function byTopic(request: Batch[], messages: Message[][]): TopicMessages[] {
  const topics = new Map<string, Message[]>();
  request.forEach(({ lane }, index) => {
    let list = topics.get(lane.topic);
    if (!list) {
      list = [];
      topics.set(lane.topic, list);
    }
    for (const message of messages[index] ?? []) list.push(message);
  });
  return [...topics].map(([topic, list]) => ({ topic, messages: list }));
}

/** A partition the producer's metadata does not have yet: nothing was sent, it is sent again. */
class PartitionNotInMetadata extends Error {
  constructor(topic: string, partition: number) {
    super(`partition ${partition} of ${topic} is not in the producer's metadata yet`);
    this.name = 'PartitionNotInMetadata';
  }
}

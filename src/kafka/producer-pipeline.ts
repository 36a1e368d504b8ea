import type { Message, Producer, TopicMessages } from 'kafkajs';
import type { KafkaRecord } from '../rules/types.js';
import type { Logger } from '../observability/logger.js';
import type { BridgeMetrics } from '../observability/metrics.js';
import { ReasonCode } from '../mqtt/reason-codes.js';
import {
  isTransientProduceError,
  needsNewProducerId,
  produceErrorCause,
  produceFailureOf,
  type ProduceFailure,
} from './produce-failure.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';

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
}

/** Longest pause between attempts while Kafka is unreachable. */
const MAX_BACKOFF_MS = 5_000;
const FIRST_BACKOFF_MS = 250;

/** A record to produce: a mapped one, or a tombstone (null value) of a compacted topic. */
export type OutgoingRecord = Omit<KafkaRecord, 'value'> & { value: Buffer | null };

/** Called once per enqueued group of records: no argument when Kafka has all of them. */
export type Settle = (failure?: ProduceFailure) => void;

interface Entry {
  records: OutgoingRecord[];
  bytes: number;
  settle: Settle | undefined;
  enqueuedAt: number;
  /** Settled already (timed out while its request was in flight): its outcome is ignored. */
  settled: boolean;
}

/**
 * Turns many publishes into few produce requests. One request is in flight at
 * a time; whatever arrives meanwhile forms the next batch. That keeps the
 * order of records as they were enqueued, across retries too (the KafkaJS
 * idempotent producer retries a request until Kafka takes it), and lets
 * batches grow exactly as large as Kafka's latency demands.
 */
export class ProducerPipeline {
  #producer: Producer;
  /** A new, unconnected producer (same settings) when the idempotent state is lost. */
  readonly #newProducer: () => Producer;
  /** False after a new producer replaced a lost one, until it connects. */
  #producerConnected = true;
  #closed = false;
  readonly #options: PipelineOptions;
  readonly #log: Logger;
  readonly #metrics: BridgeMetrics;
  #queue: Entry[] = [];
  #inFlight = false;
  /** The entries of the request in flight. */
  #sending: Entry[] = [];
  #scheduled = false;
  #idleWaiters: Array<() => void> = [];
  #pendingBytes = 0;
  #pendingRecords = 0;
  #congested = false;
  readonly #congestionListeners: Array<(congested: boolean) => void> = [];
  /** False from a failure to reach Kafka until the next success. */
  #reachable = true;
  #backoffMs = 0;
  readonly #failureLog: RateLimitedLog;
  readonly #timeoutSweep: NodeJS.Timeout | undefined;

  /** `producer` is connected; `newProducer` makes another like it (see #renewProducer). */
  constructor(
    producer: Producer,
    newProducer: () => Producer,
    options: PipelineOptions,
    log: Logger,
    metrics: BridgeMetrics,
  ) {
    this.#producer = producer;
    this.#newProducer = newProducer;
    this.#options = options;
    this.#log = log;
    this.#metrics = metrics;
    this.#failureLog = new RateLimitedLog(log);
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
    let bytes = 0;
    for (const record of records) bytes += record.value?.length ?? 0;
    this.#queue.push({ records, bytes, settle, enqueuedAt: Date.now(), settled: false });
    this.#track(records.length, bytes);
    this.#schedule();
  }

  /** How long the oldest record not yet acknowledged has waited (0 when none waits). */
  get oldestPendingMs(): number {
    const oldest = this.#sending[0] ?? this.#queue[0];
    return oldest ? Date.now() - oldest.enqueuedAt : 0;
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
    this.#congestionListeners.push(listener);
  }

  /** Resolves once every record enqueued so far is settled. */
  async idle(): Promise<void> {
    if (!this.#inFlight && this.#queue.length === 0) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Sends nothing more and stops the timeout sweep (records still queued are left as they are). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timeoutSweep);
  }

  #track(records: number, bytes: number): void {
    this.#pendingRecords += records;
    this.#pendingBytes += bytes;
    this.#metrics.kafkaPendingRecords.set(this.#pendingRecords);
    this.#metrics.kafkaPendingBytes.set(this.#pendingBytes);
    const { maxPendingRecords, maxPendingBytes } = this.#options;
    const congested = this.#congested
      ? this.#pendingRecords >= maxPendingRecords / 2 || this.#pendingBytes >= maxPendingBytes / 2
      : this.#pendingRecords >= maxPendingRecords || this.#pendingBytes >= maxPendingBytes;
    if (congested === this.#congested) return;
    this.#congested = congested;
    this.#metrics.kafkaCongested.set(congested ? 1 : 0);
    if (congested)
      this.#log.warn(
        { records: this.#pendingRecords, bytes: this.#pendingBytes },
        'uplink congested: publishing connections are held',
      );
    else this.#log.info('uplink congestion over');
    for (const listener of this.#congestionListeners) listener(congested);
  }

  /** Queued entries older than ackTimeoutMs fail with 0x97 (quota exceeded). */
  /**
   * Entries older than ackTimeoutMs fail with 0x97 (quota exceeded): queued
   * ones are dropped, and those of a request still in flight (Kafka not
   * answering) are answered now — should Kafka write them after all, the
   * device's retransmission makes a duplicate, never a loss.
   */
  #failOverdue(): void {
    const deadline = Date.now() - this.#options.ackTimeoutMs;
    const isOverdue = (entry: Entry): boolean => !entry.settled && entry.enqueuedAt <= deadline;
    const overdue = [...this.#sending.filter(isOverdue), ...this.#queue.filter(isOverdue)];
    if (overdue.length === 0) return;
    this.#queue = this.#queue.filter((entry) => !isOverdue(entry));
    const records = overdue.reduce((sum, entry) => sum + entry.records.length, 0);
    this.#log.warn(
      { records },
      `records not acknowledged by Kafka within ${this.#options.ackTimeoutMs} ms: refused`,
    );
    this.#settle(overdue, {
      reasonCode: ReasonCode.QuotaExceeded,
      reason: `Kafka did not acknowledge within ${this.#options.ackTimeoutMs} ms`,
      timedOut: true,
    });
    if (!this.#inFlight && this.#queue.length === 0) this.#notifyIdle();
  }

  #schedule(): void {
    if (this.#inFlight || this.#scheduled) return;
    this.#scheduled = true;
    const run = (): void => {
      this.#scheduled = false;
      void this.#sendNext();
    };
    const delay = Math.max(this.#options.lingerMs, this.#backoffMs);
    if (delay > 0) setTimeout(run, delay);
    else setImmediate(run);
  }

  async #sendNext(): Promise<void> {
    if (this.#closed) return;
    const batch = this.#takeBatch();
    if (batch.length === 0) {
      this.#notifyIdle();
      return;
    }
    this.#inFlight = true;
    this.#sending = batch;
    try {
      await this.#sendEntries(batch);
    } finally {
      this.#inFlight = false;
      this.#sending = [];
    }
    if (this.#queue.length === 0) this.#notifyIdle();
    else if (this.#backoffMs > 0) this.#schedule();
    else void this.#sendNext();
  }

  #takeBatch(): Entry[] {
    let records = 0;
    let bytes = 0;
    let count = 0;
    for (const entry of this.#queue) {
      const fits =
        records + entry.records.length <= this.#options.batchMaxRecords &&
        bytes + entry.bytes <= this.#options.batchMaxBytes;
      if (count > 0 && !fits) break;
      records += entry.records.length;
      bytes += entry.bytes;
      count++;
    }
    const batch = this.#queue.slice(0, count);
    this.#queue = this.#queue.slice(count);
    return batch;
  }

  /**
   * Sends entries in one request. Kafka unreachable: they go back to the
   * front of the queue and are tried again after a backoff (until the ack
   * timeout refuses them). Refused for good: each entry is tried alone, so
   * one bad record does not fail its neighbours, and fails with its reason.
   */
  async #sendEntries(batch: Entry[]): Promise<void> {
    const records = batch.reduce((sum, entry) => sum + entry.records.length, 0);
    const started = performance.now();
    try {
      if (!this.#producerConnected) await this.#connectProducer();
      await this.#producer.sendBatch({ acks: -1, topicMessages: toTopicMessages(batch) });
    } catch (error) {
      if (isTransientProduceError(error)) {
        this.#unreachable(error, batch);
        if (needsNewProducerId(error)) await this.#renewProducer();
        return;
      }
      if (batch.length > 1) {
        this.#log.debug({ err: error }, 'batch refused; retrying entries one by one');
        for (const [index, entry] of batch.entries()) {
          await this.#sendEntries([entry]);
          if (!this.#reachable) {
            // the rest waits for Kafka with the entry that found it gone
            this.#queue.splice(1, 0, ...batch.slice(index + 1).filter((rest) => !rest.settled));
            return;
          }
        }
        return;
      }
      this.#reached();
      this.#failureLog.warn(
        produceErrorCause(error),
        { err: error, topics: topicsOf(batch) },
        'produce refused',
      );
      this.#metrics.kafkaProduceFailures.inc();
      this.#settle(batch, produceFailureOf(error));
      return;
    }
    this.#reached();
    this.#metrics.kafkaProduceSeconds.observe((performance.now() - started) / 1000);
    this.#metrics.kafkaBatchRecords.observe(records);
    this.#metrics.kafkaRecordsProduced.inc(records);
    this.#settle(batch, undefined);
  }

  #unreachable(error: unknown, batch: Entry[]): void {
    this.#reachable = false;
    this.#backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(FIRST_BACKOFF_MS, this.#backoffMs * 2));
    this.#metrics.kafkaProduceRetries.inc();
    this.#failureLog.warn(
      produceErrorCause(error),
      { err: error, retryInMs: this.#backoffMs },
      'Kafka unreachable: acknowledgements held, retrying',
    );
    this.#queue.unshift(...batch.filter((entry) => !entry.settled));
  }

  /**
   * After a broker restart Kafka may have lost the idempotent producer's state (out-of-order
   * sequence number, unknown producer id). A KafkaJS producer keeps its producer id and
   * sequence numbers across reconnects, so a new producer takes its place: it gets a new
   * producer id, and sequence numbers start again.
   */
  async #renewProducer(): Promise<void> {
    this.#log.warn('idempotent producer state lost (broker restart?): starting a new producer');
    await this.#producer.disconnect().catch(() => undefined);
    if (this.#closed) return;
    this.#producer = this.#newProducer();
    this.#producerConnected = false;
    // at once, so that readiness sees a connected producer also when nothing is sent
    await this.#connectProducer().catch((error: unknown) => {
      this.#log.warn({ err: error }, 'new producer not connected yet; trying with the next send');
    });
  }

  async #connectProducer(): Promise<void> {
    await this.#producer.connect();
    if (this.#closed) {
      await this.#producer.disconnect();
      return;
    }
    this.#producerConnected = true;
  }

  /** Disconnects the producer in use (after close, when nothing is sent any more). */
  async disconnect(): Promise<void> {
    await this.#producer.disconnect();
  }

  #reached(): void {
    if (!this.#reachable) this.#log.info('Kafka reachable again');
    this.#reachable = true;
    this.#backoffMs = 0;
  }

  #settle(batch: Entry[], failure: ProduceFailure | undefined): void {
    const open = batch.filter((entry) => !entry.settled);
    let records = 0;
    let bytes = 0;
    for (const entry of open) {
      entry.settled = true;
      records += entry.records.length;
      bytes += entry.bytes;
    }
    this.#track(-records, -bytes);
    for (const entry of open) entry.settle?.(failure);
  }

  #notifyIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function toTopicMessages(batch: Entry[]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const entry of batch) {
    for (const record of entry.records) {
      let messages = byTopic.get(record.topic);
      if (!messages) {
        messages = [];
        byTopic.set(record.topic, messages);
      }
      messages.push({
        key: record.key,
        value: record.value,
        headers: record.headers,
        timestamp: String(record.timestamp),
        ...(record.partition !== undefined ? { partition: record.partition } : {}),
      });
    }
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

function topicsOf(batch: Entry[]): string[] {
  return [...new Set(batch.flatMap((entry) => entry.records.map((record) => record.topic)))];
}

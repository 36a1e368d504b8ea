import type { Message, Producer, TopicMessages } from 'kafkajs';
import type { KafkaRecord } from '../rules/types.js';
import type { Logger } from '../observability/logger.js';
import type { BridgeMetrics } from '../observability/metrics.js';
import { produceFailureOf, type ProduceFailure } from './produce-failure.js';

export interface PipelineOptions {
  /** Wait this long to fill a batch when nothing is in flight; 0 sends on the next tick. */
  lingerMs: number;
  batchMaxRecords: number;
  batchMaxBytes: number;
}

/** Called once per enqueued group of records: no argument when Kafka has all of them. */
export type Settle = (failure?: ProduceFailure) => void;

interface Entry {
  records: KafkaRecord[];
  bytes: number;
  settle: Settle | undefined;
}

/**
 * Turns many publishes into few produce requests. One request is in flight at
 * a time; whatever arrives meanwhile forms the next batch. That keeps the
 * order of records as they were enqueued, across retries too (the KafkaJS
 * idempotent producer retries a request until Kafka takes it), and lets
 * batches grow exactly as large as Kafka's latency demands.
 */
export class ProducerPipeline {
  readonly #producer: Producer;
  readonly #options: PipelineOptions;
  readonly #log: Logger;
  readonly #metrics: BridgeMetrics;
  #queue: Entry[] = [];
  #inFlight = false;
  #scheduled = false;
  #idleWaiters: Array<() => void> = [];

  constructor(producer: Producer, options: PipelineOptions, log: Logger, metrics: BridgeMetrics) {
    this.#producer = producer;
    this.#options = options;
    this.#log = log;
    this.#metrics = metrics;
  }

  enqueue(records: KafkaRecord[], settle: Settle | undefined): void {
    let bytes = 0;
    for (const record of records) bytes += record.value.length;
    this.#queue.push({ records, bytes, settle });
    this.#metrics.kafkaPendingRecords.inc(records.length);
    this.#schedule();
  }

  /** Resolves once every record enqueued so far is settled. */
  async idle(): Promise<void> {
    if (!this.#inFlight && this.#queue.length === 0) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  #schedule(): void {
    if (this.#inFlight || this.#scheduled) return;
    this.#scheduled = true;
    const run = (): void => {
      this.#scheduled = false;
      void this.#sendNext();
    };
    if (this.#options.lingerMs > 0) setTimeout(run, this.#options.lingerMs);
    else setImmediate(run);
  }

  async #sendNext(): Promise<void> {
    const batch = this.#takeBatch();
    if (batch.length === 0) {
      this.#notifyIdle();
      return;
    }
    this.#inFlight = true;
    try {
      await this.#sendEntries(batch);
    } finally {
      this.#inFlight = false;
    }
    if (this.#queue.length > 0) void this.#sendNext();
    else this.#notifyIdle();
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

  async #sendEntries(batch: Entry[]): Promise<void> {
    const records = batch.reduce((sum, entry) => sum + entry.records.length, 0);
    const started = performance.now();
    try {
      await this.#producer.sendBatch({ acks: -1, topicMessages: toTopicMessages(batch) });
    } catch (error) {
      if (batch.length > 1) {
        // One bad record must not fail its neighbours: retry one entry at a time.
        this.#log.debug({ err: error }, 'batch refused; retrying entries one by one');
        for (const entry of batch) await this.#sendEntries([entry]);
        return;
      }
      const failure = produceFailureOf(error);
      this.#log.warn({ err: error, topics: topicsOf(batch) }, 'produce failed');
      this.#metrics.kafkaProduceFailures.inc();
      this.#settle(batch, records, failure);
      return;
    }
    this.#metrics.kafkaProduceSeconds.observe((performance.now() - started) / 1000);
    this.#metrics.kafkaBatchRecords.observe(records);
    this.#metrics.kafkaRecordsProduced.inc(records);
    this.#settle(batch, records, undefined);
  }

  #settle(batch: Entry[], records: number, failure: ProduceFailure | undefined): void {
    this.#metrics.kafkaPendingRecords.dec(records);
    for (const entry of batch) entry.settle?.(failure);
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

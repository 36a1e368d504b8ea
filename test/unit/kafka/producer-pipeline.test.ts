import type { Producer, ProducerBatch } from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ProducerPipeline, type Settle } from '../../../src/kafka/producer-pipeline.js';
import { BridgeMetrics } from '../../../src/observability/metrics.js';
import type { KafkaRecord } from '../../../src/rules/types.js';
import { waitFor } from '../../support/wait-for.js';

/** A fake of the Producer methods the pipeline uses; each send waits until released. */
class FakeProducer {
  readonly calls: ProducerBatch[] = [];
  connected = false;

  connect(): Promise<void> {
    this.connected = true;
    return Promise.resolve();
  }

  disconnect(): Promise<void> {
    this.connected = false;
    return Promise.resolve();
  }

  readonly #releases: Array<(error?: Error) => void> = [];

  sendBatch(batch: ProducerBatch): Promise<unknown> {
    this.calls.push(batch);
    return new Promise((resolve, reject) => {
      this.#releases.push((error) => {
        if (error) reject(error);
        else resolve([]);
      });
    });
  }

  /** Completes the oldest outstanding request. */
  release(error?: Error): void {
    const release = this.#releases.shift();
    if (!release) throw new Error('no request in flight');
    release(error);
  }

  get outstanding(): number {
    return this.#releases.length;
  }
}

const record = (value: string, topic = 'telemetry'): KafkaRecord => ({
  topic,
  key: 'k',
  value: Buffer.from(value),
  partition: undefined,
  timestamp: 1_700_000_000_000,
  headers: {},
});

function pipeline(options: Partial<ConstructorParameters<typeof ProducerPipeline>[2]> = {}) {
  const producer = new FakeProducer();
  /** Producers made to replace one whose idempotent state was lost. */
  const replacements: FakeProducer[] = [];
  const subject = new ProducerPipeline(
    producer as unknown as Producer,
    () => {
      const replacement = new FakeProducer();
      replacements.push(replacement);
      return replacement as unknown as Producer;
    },
    {
      lingerMs: 0,
      batchMaxRecords: 1000,
      batchMaxBytes: 1_000_000,
      maxPendingBytes: 1_000_000,
      maxPendingRecords: 1000,
      ackTimeoutMs: 0,
      ...options,
    },
    pino({ level: 'silent' }),
    new BridgeMetrics(),
  );
  return { producer, subject, replacements };
}

function values(batch: ProducerBatch | undefined): string[] {
  return (batch?.topicMessages ?? []).flatMap((topic) =>
    topic.messages.map((message) => String(message.value)),
  );
}

describe('ProducerPipeline', () => {
  it('sends records enqueued in the same tick as one request with acks=all', async () => {
    const { producer, subject } = pipeline();
    for (let index = 0; index < 100; index++) subject.enqueue([record(`m${index}`)], undefined);
    await waitFor(() => producer.calls.length === 1);
    expect(producer.calls[0]?.acks).toBe(-1);
    expect(values(producer.calls[0])).toHaveLength(100);
    expect(values(producer.calls[0])[0]).toBe('m0');
  });

  it('settles only after Kafka acknowledged, and batches what arrived meanwhile', async () => {
    const { producer, subject } = pipeline();
    const settled: string[] = [];
    const settle =
      (name: string): Settle =>
      (failure) =>
        settled.push(failure ? `${name}:failed` : name);
    subject.enqueue([record('a')], settle('a'));
    await waitFor(() => producer.calls.length === 1);
    subject.enqueue([record('b')], settle('b'));
    subject.enqueue([record('c'), record('c2', 'other')], settle('c'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(producer.calls).toHaveLength(1); // one request in flight at a time
    expect(settled).toEqual([]);
    producer.release();
    await waitFor(() => producer.calls.length === 2);
    expect(settled).toEqual(['a']);
    expect(values(producer.calls[1])).toEqual(['b', 'c', 'c2']);
    producer.release();
    await subject.idle();
    expect(settled).toEqual(['a', 'b', 'c']);
  });

  it('caps a batch by record count and by bytes, keeping order', async () => {
    const { producer, subject } = pipeline({ batchMaxRecords: 3, batchMaxBytes: 10 });
    for (const value of ['1', '2', '3', '4', '0123456789', '5'])
      subject.enqueue([record(value)], undefined);
    const sent: string[][] = [];
    while (sent.flat().length < 6) {
      await waitFor(() => producer.outstanding === 1);
      sent.push(values(producer.calls.at(-1)));
      producer.release();
    }
    expect(sent).toEqual([['1', '2', '3'], ['4'], ['0123456789'], ['5']]);
  });

  it('isolates a record Kafka refuses: its neighbours still succeed', async () => {
    const { producer, subject } = pipeline();
    const outcomes = new Map<string, string>();
    for (const name of ['good1', 'bad', 'good2']) {
      subject.enqueue([record(name)], (failure) =>
        outcomes.set(name, failure ? `0x${failure.reasonCode.toString(16)}` : 'ok'),
      );
    }
    await waitFor(() => producer.outstanding === 1);
    producer.release(Object.assign(new Error('too large'), { type: 'MESSAGE_TOO_LARGE' }));
    // retried one entry at a time
    for (const expected of ['good1', 'bad', 'good2']) {
      await waitFor(() => producer.outstanding === 1);
      expect(values(producer.calls.at(-1))).toEqual([expected]);
      producer.release(
        expected === 'bad'
          ? Object.assign(new Error('too large'), { type: 'MESSAGE_TOO_LARGE' })
          : undefined,
      );
    }
    await subject.idle();
    expect(Object.fromEntries(outcomes)).toEqual({ good1: 'ok', bad: '0x97', good2: 'ok' });
  });

  it('waits for the linger time before sending when configured', async () => {
    const { producer, subject } = pipeline({ lingerMs: 50 });
    subject.enqueue([record('a')], undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(producer.calls).toHaveLength(0);
    await waitFor(() => producer.calls.length === 1);
  });

  it('holds records while Kafka is unreachable and sends them, in order, once it is back', async () => {
    const { producer, subject } = pipeline();
    const settled: string[] = [];
    for (const name of ['a', 'b']) subject.enqueue([record(name)], () => settled.push(name));
    await waitFor(() => producer.outstanding === 1);
    const unreachable = Object.assign(new Error('connect ECONNREFUSED'), {
      name: 'KafkaJSConnectionError',
    });
    producer.release(unreachable);
    expect(subject.kafkaReachable).toBe(true); // settles on the next tick
    await waitFor(() => !subject.kafkaReachable);
    subject.enqueue([record('c')], () => settled.push('c'));
    await waitFor(() => producer.outstanding === 1); // after the backoff
    expect(values(producer.calls.at(-1))).toEqual(['a', 'b', 'c']);
    expect(settled).toEqual([]);
    producer.release();
    await subject.idle();
    expect(settled).toEqual(['a', 'b', 'c']);
    expect(subject.kafkaReachable).toBe(true);
  });

  it('replaces the producer when Kafka lost its idempotent state, and sends the records again on the new one', async () => {
    const { producer, subject, replacements } = pipeline();
    producer.connected = true;
    const settled: string[] = [];
    for (const name of ['a', 'b']) subject.enqueue([record(name)], () => settled.push(name));
    await waitFor(() => producer.outstanding === 1);
    const stateLost = Object.assign(
      new Error('The broker received an out of order sequence number'),
      {
        name: 'KafkaJSProtocolError',
        type: 'OUT_OF_ORDER_SEQUENCE_NUMBER',
      },
    );
    producer.release(stateLost);
    await waitFor(() => replacements[0]?.outstanding === 1);
    const replacement = replacements[0] as FakeProducer;
    // a KafkaJS producer keeps its producer id across reconnects: a new one takes over
    expect(producer.connected).toBe(false);
    expect(replacement.connected).toBe(true);
    expect(values(replacement.calls[0])).toEqual(['a', 'b']);
    replacement.release();
    await subject.idle();
    expect(settled).toEqual(['a', 'b']);
    expect(producer.calls).toHaveLength(1);
  });

  it('refuses records with 0x97 once the ack timeout passes, in flight or queued', async () => {
    const { producer, subject } = pipeline({ ackTimeoutMs: 50 });
    const outcomes: string[] = [];
    const settle =
      (name: string): Settle =>
      (failure) =>
        outcomes.push(failure ? `${name}:0x${failure.reasonCode.toString(16)}` : name);
    subject.enqueue([record('first')], settle('first'));
    await waitFor(() => producer.outstanding === 1);
    subject.enqueue([record('late')], settle('late'));
    // Kafka does not answer the request in flight
    await waitFor(() => outcomes.length === 2, { timeoutMs: 3_000 });
    expect(outcomes).toEqual(['first:0x97', 'late:0x97']);
    // its late answer changes nothing, and the queued record is not sent
    producer.release();
    await subject.idle();
    expect(outcomes).toEqual(['first:0x97', 'late:0x97']);
    expect(producer.calls).toHaveLength(1);
    subject.close();
  });

  it('reports congestion at the record or byte limit, and its end below half', async () => {
    const { producer, subject } = pipeline({ maxPendingRecords: 4, maxPendingBytes: 100 });
    const events: boolean[] = [];
    subject.onCongestion((congested) => events.push(congested));
    for (let index = 0; index < 3; index++) subject.enqueue([record('x')], undefined);
    expect(events).toEqual([]);
    subject.enqueue([record('x')], undefined);
    expect(events).toEqual([true]);
    await waitFor(() => producer.outstanding === 1);
    producer.release();
    await subject.idle();
    expect(events).toEqual([true, false]);
    subject.enqueue([record('y'.repeat(100))], undefined);
    expect(events).toEqual([true, false, true]);
  });
});

import { CompressionTypes, type Message, type Producer, type ProducerBatch } from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  ProducerPipeline,
  type PartitionCountSource,
  type Settle,
} from '../../../src/kafka/producer-pipeline.js';
import { installStoredPartitions, markStored } from '../../../src/kafka/stored-partitions.js';
import { BridgeMetrics } from '../../../src/observability/metrics.js';
import type { KafkaRecord } from '../../../src/rules/types.js';
import { waitFor } from '../../support/wait-for.js';

// several partitions in one request, as with KafkaJS 2.2.4 (the fakes say what was stored)
installStoredPartitions();

/** Marks the first message of each partition of the batch stored, as KafkaJS's broker does. */
function markAllStored(batch: ProducerBatch): void {
  for (const { messages } of batch.topicMessages ?? []) {
    const seen = new Set<number>();
    for (const message of messages) {
      const partition = message.partition ?? 0;
      if (!seen.has(partition)) markStored(message);
      seen.add(partition);
    }
  }
}

/** A fake of the Producer methods the pipeline uses (one broker); each send waits until released. */
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

  readonly #releases: Array<(error: Error | undefined, silent: boolean) => void> = [];

  sendBatch(batch: ProducerBatch): Promise<unknown> {
    this.calls.push(batch);
    return new Promise((resolve, reject) => {
      this.#releases.push((error, silent) => {
        if (error) reject(error);
        else if (silent) resolve([]);
        else {
          markAllStored(batch);
          resolve(resultsOf(batch));
        }
      });
    });
  }

  /**
   * Completes the oldest outstanding request; `silent`: with no result for its partition, as
   * KafkaJS answers for a partition its metadata lacks.
   */
  release(error?: Error, silent = false): void {
    const release = this.#releases.shift();
    if (!release) throw new Error('no request in flight');
    release(error, silent);
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

/** What KafkaJS's sendBatch resolves with: one result per topic partition written. */
function resultsOf(batch: ProducerBatch): Array<{ topicName: string; partition: number }> {
  return (batch.topicMessages ?? []).flatMap(({ topic, messages }) =>
    [...new Set(messages.map((message) => message.partition ?? 0))].map((partition) => ({
      topicName: topic,
      partition,
    })),
  );
}

/** Partition counts from a table; topics not in it do not exist. */
class FakeCounts implements PartitionCountSource {
  readonly lookups: string[] = [];
  /** While set, lookups fail as if Kafka were unreachable. */
  unreachable = false;
  readonly #known = new Map<string, number | null>();
  readonly #missing = new Set<string>();

  constructor(readonly counts: Record<string, number>) {}

  cached(topic: string): number | null | undefined {
    return this.#known.get(topic);
  }

  missing(topic: string): boolean {
    return this.#missing.has(topic);
  }

  error(): string | undefined {
    return this.unreachable ? 'unreachable' : undefined;
  }

  async fetch(topic: string): Promise<void> {
    this.lookups.push(topic);
    await new Promise((resolve) => setImmediate(resolve));
    const count = this.counts[topic];
    this.#missing.delete(topic);
    if (this.unreachable) this.#known.set(topic, null);
    else if (count === undefined) {
      this.#known.set(topic, null);
      this.#missing.add(topic);
    } else this.#known.set(topic, count);
  }
}

type Options = ConstructorParameters<typeof ProducerPipeline>[3];

const OPTIONS: Options = {
  compression: CompressionTypes.None,
  lingerMs: 0,
  batchMaxRecords: 1000,
  batchMaxBytes: 1_000_000,
  maxPendingBytes: 1_000_000,
  maxPendingRecords: 1000,
  ackTimeoutMs: 0,
};

function pipeline(
  options: Partial<Options> = {},
  counts = new FakeCounts({ telemetry: 1, other: 1 }),
) {
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
    counts,
    { ...OPTIONS, ...options },
    pino({ level: 'silent' }),
    new BridgeMetrics(),
  );
  return { producer, subject, replacements, counts };
}

/** A pipeline in front of a ClusterProducer, for a topic of `partitions` partitions. */
function onCluster(partitions: number) {
  const cluster = new ClusterProducer();
  const subject = new ProducerPipeline(
    cluster as unknown as Producer,
    () => {
      throw new Error('no replacement expected');
    },
    new FakeCounts({ telemetry: partitions }),
    OPTIONS,
    pino({ level: 'silent' }),
    new BridgeMetrics(),
  );
  return { cluster, subject };
}

/**
 * A producer in front of a cluster, as KafkaJS behaves: one request per partition leader in
 * parallel; a leader that is up stores its records, and the call fails when any leader is down
 * or refuses a record (a value in `refused`), the refusal first.
 */
class ClusterProducer {
  readonly stored = new Map<number, string[]>();
  readonly down = new Set<number>();
  readonly refused = new Set<string>();
  readonly requests: number[][] = [];
  calls = 0;

  connect(): Promise<void> {
    return Promise.resolve();
  }

  disconnect(): Promise<void> {
    return Promise.resolve();
  }

  async sendBatch(batch: ProducerBatch): Promise<unknown> {
    this.calls++;
    await new Promise((resolve) => setImmediate(resolve));
    const perPartition = new Map<number, Message[]>();
    for (const { messages } of batch.topicMessages ?? []) {
      for (const message of messages) {
        const partition = message.partition ?? 0;
        perPartition.set(partition, [...(perPartition.get(partition) ?? []), message]);
      }
    }
    this.requests.push([...perPartition.keys()]);
    let down = false;
    let refused = false;
    for (const [partition, messages] of perPartition) {
      if (this.down.has(partition)) {
        down = true;
        continue;
      }
      if (messages.some((message) => this.refused.has(String(message.value)))) {
        refused = true;
        continue;
      }
      const values = this.stored.get(partition) ?? [];
      values.push(...messages.map((message) => String(message.value)));
      this.stored.set(partition, values);
      markStored(messages[0] as Message);
    }
    if (refused) {
      throw Object.assign(new Error('record too large'), {
        name: 'KafkaJSProtocolError',
        type: 'MESSAGE_TOO_LARGE',
      });
    }
    if (down) throw Object.assign(new Error('leader down'), { name: 'KafkaJSConnectionError' });
    return resultsOf(batch);
  }
}

function values(batch: ProducerBatch | undefined): string[] {
  return (batch?.topicMessages ?? []).flatMap((topic) =>
    topic.messages.map((message) => String(message.value)),
  );
}

describe('ProducerPipeline', () => {
  it('sends the records of a partition enqueued in the same tick as one request with acks=all', async () => {
    const { producer, subject } = pipeline();
    for (let index = 0; index < 100; index++) subject.enqueue([record(`m${index}`)], undefined);
    await waitFor(() => producer.calls.length === 1);
    expect(producer.calls[0]?.acks).toBe(-1);
    expect(producer.calls[0]?.compression).toBe(CompressionTypes.None);
    expect(values(producer.calls[0])).toHaveLength(100);
    expect(values(producer.calls[0])[0]).toBe('m0');
  });

  it('settles the other records of a request when one settle callback throws', async () => {
    const { producer, subject } = pipeline();
    const settled: string[] = [];
    subject.enqueue([record('a')], () => settled.push('a'));
    subject.enqueue([record('b')], () => {
      throw new Error('bug in one publish');
    });
    subject.enqueue([record('c')], () => settled.push('c'));
    await waitFor(() => producer.calls.length === 1);
    producer.release();
    await subject.idle();
    expect(settled).toEqual(['a', 'c']);
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
    // the partition of 'other' has nothing in flight: its record goes at once
    await waitFor(() => producer.calls.length === 2);
    expect(values(producer.calls[1])).toEqual(['c2']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(producer.calls).toHaveLength(2); // one request in flight per partition
    expect(settled).toEqual([]);
    producer.release(); // a
    await waitFor(() => producer.calls.length === 3);
    expect(settled).toEqual(['a']);
    expect(values(producer.calls[2])).toEqual(['b', 'c']);
    producer.release(); // c2: c still waits for its record in 'telemetry'
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toEqual(['a']);
    producer.release(); // b, c
    await subject.idle();
    expect(settled).toEqual(['a', 'b', 'c']);
  });

  it('a failure on one broker re-sends only the records that broker did not store', async () => {
    const { cluster, subject } = onCluster(3);
    cluster.down.add(1);
    const settled: string[] = [];
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'];
    for (const key of keys) {
      subject.enqueue([{ ...record(key), key }], () => settled.push(key));
    }
    await waitFor(() => cluster.calls >= 4);
    cluster.down.delete(1);
    await subject.idle();
    expect(settled.sort()).toEqual(keys);
    const stored = [...cluster.stored.values()].flat().sort();
    expect(stored).toEqual(keys); // each once
  });

  it('sends the next batch of every partition with nothing in flight in one request', async () => {
    const { cluster, subject } = onCluster(3);
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'];
    for (const key of keys) subject.enqueue([{ ...record(key), key }], undefined);
    await subject.idle();
    expect(cluster.requests).toHaveLength(1);
    expect(cluster.requests[0]?.sort()).toEqual([0, 1, 2]);
  });

  it('a record refused in a request of several partitions fails alone; the others are stored once', async () => {
    const { cluster, subject } = onCluster(3);
    cluster.refused.add('k1');
    const outcomes = new Map<string, number | undefined>();
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'];
    for (const key of keys) {
      subject.enqueue([{ ...record(key), key }], (failure) => {
        outcomes.set(key, failure?.reasonCode);
      });
    }
    await subject.idle();
    expect(outcomes.get('k1')).toBe(0x97);
    expect(keys.filter((key) => outcomes.get(key) !== undefined)).toEqual(['k1']);
    const stored = [...cluster.stored.values()].flat().sort();
    expect(stored).toEqual(keys.filter((key) => key !== 'k1')); // each once
    expect(cluster.requests[0]?.length).toBe(3);
  });

  it('puts a keyed record in the partition of murmur2 as Kafka’s Java client, and keeps it there on a retry', async () => {
    const { cluster, subject } = onCluster(6);
    // Java: murmur2("foobar") = -790332482 → (h & 0x7fffffff) % 6 = 0; murmur2("abc") = 479470107 → 3
    cluster.down.add(0);
    subject.enqueue(
      [
        { ...record('f'), key: 'foobar' },
        { ...record('a'), key: 'abc' },
      ],
      undefined,
    );
    await waitFor(() => cluster.calls >= 3);
    cluster.down.delete(0);
    await subject.idle();
    expect(Object.fromEntries(cluster.stored)).toEqual({ 0: ['f'], 3: ['a'] });
  });

  it('spreads records without a key round robin', async () => {
    const { cluster, subject } = onCluster(3);
    for (const value of ['0', '1', '2', '3'])
      subject.enqueue([{ ...record(value), key: null }], undefined);
    await subject.idle();
    expect(Object.fromEntries(cluster.stored)).toEqual({ 0: ['0', '3'], 1: ['1'], 2: ['2'] });
  });

  it('refuses records for a topic Kafka does not have, without producing (no auto-creation)', async () => {
    const { producer, subject, counts } = pipeline();
    const outcomes: string[] = [];
    subject.enqueue([record('x', 'devices.nope')], (failure) =>
      outcomes.push(failure ? `0x${failure.reasonCode.toString(16)}: ${failure.reason}` : 'ok'),
    );
    subject.enqueue([record('y')], (failure) => outcomes.push(failure ? 'failed' : 'ok'));
    await waitFor(() => producer.outstanding === 1);
    expect(values(producer.calls[0])).toEqual(['y']); // not held behind the lookup
    producer.release();
    await subject.idle();
    expect(outcomes.sort()).toEqual(['0x83: Kafka topic "devices.nope" does not exist', 'ok']);
    expect(counts.lookups).toContain('devices.nope');
    expect(producer.calls).toHaveLength(1);
  });

  it('refuses an explicit partition the topic does not have', async () => {
    const { producer, subject } = pipeline();
    const outcomes: string[] = [];
    subject.enqueue([{ ...record('x'), partition: 4 }], (failure) =>
      outcomes.push(failure?.reason ?? 'ok'),
    );
    await subject.idle();
    expect(outcomes).toEqual([
      'partition 4 is out of range: Kafka topic "telemetry" has 1 partitions',
    ]);
    expect(producer.calls).toHaveLength(0);
  });

  it('holds records while their partition count cannot be looked up, and sends them in order after', async () => {
    const counts = new FakeCounts({ telemetry: 1 });
    counts.unreachable = true;
    const { producer, subject } = pipeline({}, counts);
    for (const value of ['a', 'b']) subject.enqueue([record(value)], undefined);
    await waitFor(() => counts.lookups.length >= 2);
    subject.enqueue([record('c')], undefined);
    counts.unreachable = false;
    await waitFor(() => producer.outstanding === 1);
    expect(values(producer.calls[0])).toEqual(['a', 'b', 'c']);
    producer.release();
    await subject.idle();
  });

  it('caps a batch by record count and by bytes (key, value, headers), keeping order', async () => {
    // record('1') takes 26 bytes: 24 of overhead, key and value
    const big = 'x'.repeat(60);
    const { producer, subject } = pipeline({ batchMaxRecords: 3, batchMaxBytes: 80 });
    for (const value of ['1', '2', '3', '4', big, '5']) subject.enqueue([record(value)], undefined);
    const sent: string[][] = [];
    while (sent.flat().length < 6) {
      await waitFor(() => producer.outstanding === 1);
      sent.push(values(producer.calls.at(-1)));
      producer.release();
    }
    expect(sent).toEqual([['1', '2', '3'], ['4'], [big], ['5']]);
  });

  it('isolates a record Kafka refuses by halving the batch: its neighbours still succeed', async () => {
    const { producer, subject } = pipeline();
    const outcomes = new Map<string, string>();
    for (const name of ['good1', 'bad', 'good2']) {
      subject.enqueue([record(name)], (failure) =>
        outcomes.set(name, failure ? `0x${failure.reasonCode.toString(16)}` : 'ok'),
      );
    }
    const tooLarge = (): Error =>
      Object.assign(new Error('too large'), { type: 'MESSAGE_TOO_LARGE' });
    const steps: Array<[string[], Error | undefined]> = [
      [['good1', 'bad', 'good2'], tooLarge()],
      [['good1', 'bad'], tooLarge()],
      [['good1'], undefined],
      [['bad'], tooLarge()],
      [['good2'], undefined],
    ];
    for (const [expected, outcome] of steps) {
      await waitFor(() => producer.outstanding === 1);
      expect(values(producer.calls.at(-1))).toEqual(expected);
      producer.release(outcome);
    }
    await subject.idle();
    expect(Object.fromEntries(outcomes)).toEqual({ good1: 'ok', bad: '0x97', good2: 'ok' });
  });

  it('after a response, waits for the linger time to fill the next request', async () => {
    const { producer, subject } = pipeline({ lingerMs: 50 });
    const nextTick = () => new Promise((resolve) => setImmediate(resolve));
    subject.enqueue([record('a')], undefined);
    await waitFor(() => producer.calls.length === 1);
    // what comes while a request is in flight waits for its response, then for the linger
    subject.enqueue([record('b')], undefined);
    subject.enqueue([record('c')], undefined);
    producer.release();
    await nextTick();
    await nextTick();
    expect(producer.calls).toHaveLength(1);
    await waitFor(() => producer.calls.length === 2);
    expect(values(producer.calls.at(-1))).toEqual(['b', 'c']);
    producer.release();
  });

  it('sends at once what finds no recent response, whatever the linger time', async () => {
    const { producer, subject } = pipeline({ lingerMs: 600_000 });
    subject.enqueue([record('a')], undefined);
    await waitFor(() => producer.calls.length === 1);
    producer.release();
    await subject.idle();
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
    // after the backoff, the failed batch exactly as it was (same sequence numbers: Kafka drops
    // it if the failed request stored it after all), then what came meanwhile
    await waitFor(() => producer.outstanding === 1);
    expect(values(producer.calls.at(-1))).toEqual(['a', 'b']);
    expect(settled).toEqual([]);
    producer.release();
    await waitFor(() => producer.outstanding === 1);
    expect(values(producer.calls.at(-1))).toEqual(['c']);
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

  it('takes a batch Kafka says it has already (duplicate sequence) as stored, and sends on with a new producer', async () => {
    const { producer, subject, replacements } = pipeline();
    const settled: string[] = [];
    subject.enqueue([record('a')], (failure) => settled.push(failure ? 'a:failed' : 'a'));
    await waitFor(() => producer.outstanding === 1);
    producer.release(
      Object.assign(new Error('duplicate sequence number'), {
        name: 'KafkaJSProtocolError',
        type: 'DUPLICATE_SEQUENCE_NUMBER',
      }),
    );
    await waitFor(() => settled.length === 1);
    expect(settled).toEqual(['a']);
    subject.enqueue([record('b')], () => settled.push('b'));
    await waitFor(() => replacements[0]?.outstanding === 1);
    expect(values(replacements[0]?.calls[0])).toEqual(['b']);
    replacements[0]?.release();
    await subject.idle();
    expect(producer.calls).toHaveLength(1); // 'a' was not sent again
  });

  it('sends a batch again that KafkaJS did not send (its metadata lacks the partition yet)', async () => {
    const { producer, subject } = pipeline();
    const settled: string[] = [];
    for (const name of ['a', 'b']) subject.enqueue([record(name)], () => settled.push(name));
    await waitFor(() => producer.outstanding === 1);
    producer.release(undefined, true); // resolved with no result for the partition: not stored
    subject.enqueue([record('c')], () => settled.push('c'));
    await waitFor(() => producer.outstanding === 1);
    expect(values(producer.calls[1])).toEqual(['a', 'b']);
    expect(settled).toEqual([]);
    producer.release();
    await waitFor(() => producer.outstanding === 1);
    producer.release();
    await subject.idle();
    expect(settled).toEqual(['a', 'b', 'c']);
  });

  it('keeps the order of a halved batch when Kafka goes away in the middle', async () => {
    const { producer, subject } = pipeline();
    for (const name of ['a', 'b', 'c', 'd']) subject.enqueue([record(name)], undefined);
    const tooLarge = Object.assign(new Error('too large'), { type: 'MESSAGE_TOO_LARGE' });
    const gone = Object.assign(new Error('connection closed'), { name: 'KafkaJSConnectionError' });
    for (const [expected, outcome] of [
      [['a', 'b', 'c', 'd'], tooLarge],
      [['a', 'b'], tooLarge],
      [['a'], gone],
    ] as const) {
      await waitFor(() => producer.outstanding === 1);
      expect(values(producer.calls.at(-1))).toEqual(expected);
      producer.release(outcome);
    }
    const next: string[][] = [];
    while (next.flat().length < 4) {
      await waitFor(() => producer.outstanding === 1);
      next.push(values(producer.calls.at(-1)));
      producer.release();
    }
    expect(next).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('is idle once every entry is settled, also while a timed-out batch still waits to be resent', async () => {
    const { producer, subject } = pipeline({ ackTimeoutMs: 50 });
    const outcomes: string[] = [];
    subject.enqueue([record('a')], (failure) => outcomes.push(failure ? 'a:failed' : 'a'));
    await waitFor(() => producer.outstanding === 1);
    producer.release(Object.assign(new Error('gone'), { name: 'KafkaJSConnectionError' }));
    await waitFor(() => outcomes.length === 1, { timeoutMs: 3_000 });
    await subject.idle(); // not waiting for Kafka to come back
    expect(outcomes).toEqual(['a:failed']);
    subject.close();
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

import type { Admin } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { PartitionCounts } from '../../src/kafka/partition-counts.js';
import type { ProducerPipeline, Settle } from '../../src/kafka/producer-pipeline.js';
import { KafkaUplink } from '../../src/kafka-uplink.js';
import type { UplinkOutcome } from '../../src/mqtt/uplink-sink.js';
import { BridgeMetrics } from '../../src/observability/metrics.js';
import { MappingError } from '../../src/rules/errors.js';
import type { KafkaRecord } from '../../src/rules/types.js';
import { waitFor } from '../support/wait-for.js';
import { publish, routerOf, yaml } from './rules/fixtures.js';

/** An admin client that knows some topics' partition counts; lookups wait for `release()`. */
class FakeAdmin {
  lookups: string[] = [];
  readonly #counts: Record<string, number>;
  #waiting: Array<() => void> = [];
  hold = false;

  constructor(counts: Record<string, number>) {
    this.#counts = counts;
  }

  connect(): Promise<void> {
    return Promise.resolve();
  }

  disconnect(): Promise<void> {
    return Promise.resolve();
  }

  async fetchTopicMetadata({ topics }: { topics: string[] }) {
    this.lookups.push(...topics);
    if (this.hold) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    return {
      topics: topics.map((name) => {
        const count = this.#counts[name];
        if (count === undefined) throw new Error('This server does not host this topic-partition');
        return {
          name,
          partitions: Array.from({ length: count }, (_, partitionId) => ({ partitionId })),
        };
      }),
    };
  }

  release(): void {
    this.hold = false;
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
}

class FakePipeline {
  readonly batches: Array<{ records: KafkaRecord[]; settle: Settle | undefined }> = [];
  enqueue(records: KafkaRecord[], settle: Settle | undefined): void {
    this.batches.push({ records, settle });
  }
  get records(): KafkaRecord[] {
    return this.batches.flatMap((batch) => batch.records);
  }
}

function uplinkOf(mappings: string, counts: Record<string, number>, maxWaiting?: number) {
  const admin = new FakeAdmin(counts);
  const pipeline = new FakePipeline();
  const metrics = new BridgeMetrics();
  const uplink = new KafkaUplink(
    routerOf(mappings),
    pipeline as unknown as ProducerPipeline,
    metrics,
    new PartitionCounts(admin as unknown as Admin),
    maxWaiting,
  );
  const outcomes: UplinkOutcome[] = [];
  const send = (topic: string, payload = '{}') => {
    uplink.send(publish({ topic, payload: Buffer.from(payload) }), (outcome) =>
      outcomes.push(outcome),
    );
  };
  return { admin, pipeline, metrics, uplink, outcomes, send };
}

const RULES = yaml(
  'deadLetter: { topic: dead }',
  'uplink:',
  '  - { name: rr, from: rr, to: { topic: four, partition: round-robin } }',
  '  - { name: fixed, from: fixed, to: { topic: four, partition: 5 } }',
  '  - { name: tpl, from: "tpl/{p}", to: { topic: four, partition: "{p}" } }',
  '  - { name: nowhere, from: nowhere, to: { topic: missing, partition: round-robin } }',
  '  - { name: hashed, from: hashed, to: { topic: four } }',
  '  - { name: elsewhere, from: elsewhere, to: { topic: other } }',
);

describe('KafkaUplink', () => {
  it('spreads round-robin records over the partitions of the topic, looking the count up once', async () => {
    const { admin, pipeline, send } = uplinkOf(RULES, { four: 4 });
    for (let i = 0; i < 6; i++) send('rr');
    await waitFor(() => pipeline.records.length === 6);
    expect(pipeline.records.map((record) => record.partition)).toEqual([0, 1, 2, 3, 0, 1]);
    expect(admin.lookups).toEqual(['four']);
  });

  it('keeps the order of publishes that arrive while a partition count is fetched', async () => {
    const { admin, pipeline, send } = uplinkOf(RULES, { four: 4 });
    admin.hold = true;
    send('rr', 'first');
    send('hashed', 'second');
    send('tpl/2', 'third');
    expect(pipeline.records).toEqual([]);
    admin.release();
    await waitFor(() => pipeline.records.length === 3);
    expect(pipeline.records.map((record) => record.value.toString())).toEqual([
      'first',
      'second',
      'third',
    ]);
  });

  it('does not hold back publishes to other topics while a partition count is fetched', async () => {
    const { admin, pipeline, send } = uplinkOf(RULES, { four: 4 });
    admin.hold = true;
    send('rr', 'waits for the count');
    send('elsewhere', 'goes at once');
    send('hashed', 'waits: same topic as the first');
    expect(pipeline.records.map((record) => record.value.toString())).toEqual(['goes at once']);
    admin.release();
    await waitFor(() => pipeline.records.length === 3);
    expect(pipeline.records.map((record) => record.value.toString())).toEqual([
      'goes at once',
      'waits for the count',
      'waits: same topic as the first',
    ]);
  });

  it('reports congestion while too many publishes wait for partition counts', async () => {
    const { admin, pipeline, uplink, send } = uplinkOf(RULES, { four: 4 }, 4);
    (pipeline as unknown as { onCongestion: () => void }).onCongestion = () => undefined;
    const states: boolean[] = [];
    uplink.onCongestion((congested) => states.push(congested));
    admin.hold = true;
    for (let index = 0; index < 4; index++) send('rr');
    expect(states).toEqual([true]);
    admin.release();
    await waitFor(() => pipeline.records.length === 4);
    expect(states).toEqual([true, false]);
  });

  it('fails only the publish whose routing throws', async () => {
    const { uplink, pipeline, outcomes, metrics, send } = uplinkOf(RULES, { four: 4 });
    const broken = routerOf(RULES);
    broken.route = () => {
      throw new Error('bug in a rule');
    };
    uplink.replaceRouter(broken);
    send('hashed', 'fails');
    uplink.replaceRouter(routerOf(RULES));
    send('hashed', 'goes');
    expect(outcomes[0]).toMatchObject({ kind: 'failed', reasonCode: 0x83 });
    expect(pipeline.records.map((record) => record.value.toString())).toEqual(['goes']);
    expect(await metrics.uplinkErrors.get()).toMatchObject({ values: [{ value: 1 }] });
  });

  it('dead-letters a record whose partition the topic does not have, then answers 0x99', async () => {
    const { pipeline, outcomes, send, metrics } = uplinkOf(RULES, { four: 4 });
    send('tpl/9');
    await waitFor(() => pipeline.batches.length === 1);
    const [dead] = pipeline.records;
    expect(dead?.topic).toBe('dead');
    expect(dead?.headers['dead-letter-error']).toEqual([
      'partition 9 is out of range: Kafka topic "four" has 4 partitions',
    ]);
    expect(outcomes).toEqual([]); // not before the dead letter is in Kafka
    pipeline.batches[0]?.settle?.();
    expect(outcomes).toEqual([
      {
        kind: 'failed',
        reasonCode: 0x99,
        reason: 'tpl: partition 9 is out of range: Kafka topic "four" has 4 partitions',
        final: true,
      },
    ]);
    expect(
      (await metrics.registry.getSingleMetric('bridge_uplink_invalid_payloads_total')?.get())
        ?.values[0]?.value,
    ).toBe(1);
  });

  it('reports a Kafka failure of the dead letter itself rather than 0x99', async () => {
    const { pipeline, outcomes, send } = uplinkOf(RULES, { four: 4 });
    send('tpl/9');
    await waitFor(() => pipeline.batches.length === 1);
    pipeline.batches[0]?.settle?.({ reasonCode: 0x80, reason: 'Kafka refused the record: x' });
    expect(outcomes).toEqual([
      { kind: 'failed', reasonCode: 0x80, reason: 'Kafka refused the record: x' },
    ]);
  });

  it('dead-letters round-robin records for a topic whose partitions cannot be looked up', async () => {
    const { pipeline, send } = uplinkOf(RULES, { four: 4 });
    send('nowhere');
    await waitFor(() => pipeline.records.length === 1);
    expect(pipeline.records[0]?.headers['dead-letter-error']).toEqual([
      'partition count of "missing" unknown: This server does not host this topic-partition',
    ]);
  });

  it('leaves hashed records to the producer without looking anything up', () => {
    const { admin, pipeline, send } = uplinkOf(RULES, {});
    send('hashed');
    expect(pipeline.records[0]?.partition).toBeUndefined();
    expect(admin.lookups).toEqual([]);
  });

  it('answers the unmatched policy: drop → unmatched, reject → 0x90, forward → stored', () => {
    const drop = uplinkOf(RULES, {});
    drop.send('other');
    expect(drop.outcomes).toEqual([{ kind: 'unmatched' }]);

    const reject = uplinkOf(yaml('unmatched: { action: reject }'), {});
    reject.send('other');
    expect(reject.outcomes).toEqual([
      {
        kind: 'failed',
        reasonCode: 0x90,
        reason: 'no mapping rule matches topic "other"',
        final: true,
      },
    ]);

    const forward = uplinkOf(yaml('unmatched: { action: forward, topic: rest }'), {});
    forward.send('other');
    expect(forward.pipeline.records.map((record) => record.topic)).toEqual(['rest']);
    forward.pipeline.batches[0]?.settle?.();
    expect(forward.outcomes).toEqual([{ kind: 'stored' }]);
  });

  it('refuses at start a fixed partition that its fixed topic does not have', async () => {
    const { uplink } = uplinkOf(RULES, { four: 4 });
    await expect(uplink.checkFixedPartitions()).rejects.toThrow(
      new MappingError([
        {
          file: 'maps/m.yaml',
          line: 4,
          column: 63,
          message: 'partition 5 is out of range: Kafka topic "four" has 4 partitions',
        },
      ]),
    );
    const unknown = uplinkOf(RULES, {});
    await expect(unknown.uplink.checkFixedPartitions()).resolves.toBeUndefined();
  });

  it('checks the fixed partitions of a candidate router without putting it in use', async () => {
    const { uplink, pipeline, send } = uplinkOf(yaml('uplink: []'), { four: 4 });
    await expect(uplink.checkFixedPartitions(routerOf(RULES))).rejects.toThrow(
      'partition 5 is out of range',
    );
    send('hashed');
    expect(pipeline.records).toEqual([]);
  });

  it('routes each publish entirely by the rules in use when it arrived (hot reload)', async () => {
    const before = yaml(
      'deadLetter: { topic: dead-before }',
      'uplink:',
      '  - { name: rr, from: rr, to: { topic: four, partition: round-robin } }',
      '  - { name: tpl, from: "tpl/{p}", to: { topic: four, partition: "{p}" } }',
    );
    const after = yaml(
      'deadLetter: { topic: dead-after }',
      'uplink:',
      '  - { name: rr, from: rr, to: { topic: four-after } }',
      '  - { name: tpl, from: "tpl/{p}", to: { topic: four-after } }',
    );
    const { admin, uplink, pipeline, send } = uplinkOf(before, { four: 4 });
    admin.hold = true;
    send('rr', 'routed before');
    send('tpl/9', 'waiting behind it');
    uplink.replaceRouter(routerOf(after));
    send('rr', 'after');
    admin.release();
    await waitFor(() => pipeline.records.length === 3);
    // Routed when they arrived: the two before the reload by the old rules (the second waited
    // behind the first's lookup, same topic; partition 9 of 4 goes to the old dead letter), the
    // last by the new ones (another topic: no wait).
    expect(pipeline.records.map((record) => [record.topic, record.value.toString()])).toEqual([
      ['four-after', 'after'],
      ['four', 'routed before'],
      ['dead-before', 'waiting behind it'],
    ]);

    // A publish routed by the old rules is dead-lettered by them too, not by the new ones.
    const old = uplinkOf(before, { four: 4 });
    old.admin.hold = true;
    old.send('tpl/9');
    old.uplink.replaceRouter(routerOf(after));
    old.admin.release();
    await waitFor(() => old.pipeline.records.length === 1);
    expect(old.pipeline.records[0]?.topic).toBe('dead-before');
  });
});

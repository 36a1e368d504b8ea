import type { EachMessagePayload, Kafka } from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DownlinkConsumer, type DownlinkTarget } from '../../../src/downlink/downlink-consumer.js';
import { BridgeMetrics } from '../../../src/observability/metrics.js';
import type { ReplyCheck } from '../../../src/rules/downlink-types.js';
import type { KafkaRecord } from '../../../src/rules/types.js';
import { downlinkOf, yaml } from './fixtures.js';

/*
 * The downlink consumer and reply rules: what it does with the broker's verdict on a reply's
 * destination. The verdicts themselves are the broker's (test/integration/response-topic-acl).
 */

type EachMessage = (payload: EachMessagePayload) => Promise<void>;

/** Just enough of a KafkaJS consumer for DownlinkConsumer.start() and one eachMessage. */
function fakeKafka(): { kafka: Kafka; eachMessage: () => EachMessage } {
  let eachMessage: EachMessage | undefined;
  const consumer = {
    events: { GROUP_JOIN: 'join', CRASH: 'crash' },
    on: () => undefined,
    connect: () => Promise.resolve(),
    subscribe: () => Promise.resolve(),
    run: (options: { eachMessage: typeof eachMessage }) => {
      eachMessage = options.eachMessage;
      return Promise.resolve();
    },
    commitOffsets: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    pause: () => undefined,
    resume: () => undefined,
    disconnect: () => Promise.resolve(),
  };
  const kafka = { consumer: () => consumer } as unknown as Kafka;
  return {
    kafka,
    eachMessage: () => {
      if (eachMessage === undefined) throw new Error('the consumer does not run');
      return eachMessage;
    },
  };
}

const MAPPINGS = yaml(
  'deadLetter: { topic: dead }',
  'downlink:',
  '  - name: replies',
  '    from: iot.replies',
  "    to: { topic: '{header.mqtt-response-topic}' }",
);

const FOR_DEV1 = { 'mqtt-response-topic': 'devices/dev1/r', 'mqtt-client-id': 'dev1' };

/** Consumes one reply, by default for `dev1` to `devices/dev1/r`; what became of it. */
async function consumeReply(
  checkReply: DownlinkTarget['checkReply'],
  instanceId = '',
  headers: Record<string, string> = FOR_DEV1,
): Promise<{ delivered: string[]; deadLetters: KafkaRecord[]; metrics: Record<string, number> }> {
  const fake = fakeKafka();
  const delivered: string[] = [];
  const deadLetters: KafkaRecord[] = [];
  const checks: Array<[string | undefined, string]> = [];
  const target: DownlinkTarget = {
    publishDownlink(message, settle) {
      delivered.push(message.topic);
      settle();
      return 1;
    },
    ...(checkReply && {
      checkReply(clientId: string | undefined, topic: string): ReplyCheck {
        checks.push([clientId, topic]);
        return checkReply(clientId, topic);
      },
    }),
  };
  const metrics = new BridgeMetrics();
  const consumer = new DownlinkConsumer(
    fake.kafka,
    downlinkOf(MAPPINGS),
    target,
    (record, done) => {
      deadLetters.push(record);
      done();
    },
    {
      groupId: 'g',
      instanceId,
      startDelayMs: 0,
      sessionTimeoutMs: 30_000,
      maxUnsettled: 10,
      slowSubscriberWaitMs: 0,
      commitIntervalMs: 10_000,
    },
    pino({ level: 'silent' }),
    metrics,
  );
  await consumer.start();
  await fake.eachMessage()({
    topic: 'iot.replies',
    partition: 0,
    message: {
      key: null,
      value: Buffer.from('ok'),
      offset: '0',
      timestamp: '0',
      attributes: 0,
      headers,
    },
    heartbeat: () => Promise.resolve(),
    pause: () => () => undefined,
  });
  await consumer.stop();
  if (checkReply) {
    expect(checks).toEqual([[headers['mqtt-client-id'], headers['mqtt-response-topic']]]);
  }
  const value = async (name: string): Promise<number> =>
    (await metrics.registry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0;
  return {
    delivered,
    deadLetters,
    metrics: {
      invalid: await value('bridge_downlink_records_invalid_total'),
      withoutSession: await value('bridge_downlink_messages_without_session_total'),
    },
  };
}

describe('downlink consumer: reply rules', () => {
  it('delivers a reply the target allows', async () => {
    const result = await consumeReply(() => 'allowed');
    expect(result).toEqual({
      delivered: ['devices/dev1/r'],
      deadLetters: [],
      metrics: { invalid: 0, withoutSession: 0 },
    });
  });

  it.each([
    ['not-allowed', 'response topic "devices/dev1/r" is not one client "dev1" may subscribe to'],
    ['unknown-client', 'requesting client "dev1" is unknown (not connected, no session kept)'],
  ] as const)('dead-letters a reply the target says is %s, with the reason', async (check, why) => {
    const result = await consumeReply(() => check);
    expect(result.delivered).toEqual([]);
    expect(result.deadLetters.map((record) => record.headers)).toEqual([
      expect.objectContaining({
        'dead-letter-rule': 'replies',
        'dead-letter-error': why,
        'dead-letter-source': 'iot.replies/0/0',
      }),
    ]);
    expect(result.metrics).toEqual({ invalid: 1, withoutSession: 0 });
  });

  it('asks the target about a reply that names no requester, and says so if refused', async () => {
    const noClient = { 'mqtt-response-topic': 'devices/dev1/r' };
    // authentication off: the broker allows every reply
    expect((await consumeReply(() => 'allowed', '', noClient)).delivered).toEqual([
      'devices/dev1/r',
    ]);
    const refused = await consumeReply(() => 'unknown-client', 'bridge-2', noClient);
    expect(refused.delivered).toEqual([]);
    expect(refused.deadLetters.map((record) => record.headers['dead-letter-error'])).toEqual([
      'no requesting client id (header "mqtt-client-id" is missing)',
    ]);
    expect(refused.metrics).toEqual({ invalid: 1, withoutSession: 0 });
  });

  it('refuses every reply when the target cannot judge them', async () => {
    const result = await consumeReply(undefined);
    expect(result.delivered).toEqual([]);
    expect(result.deadLetters).toHaveLength(1);
  });

  it('in a scale-out, drops a reply of a client unknown here without a dead letter', async () => {
    // every bridge consumes every record: the requester's own bridge judges and delivers it
    const elsewhere = await consumeReply(() => 'unknown-client', 'bridge-2');
    expect(elsewhere).toEqual({
      delivered: [],
      deadLetters: [],
      metrics: { invalid: 0, withoutSession: 1 },
    });
    const refused = await consumeReply(() => 'not-allowed', 'bridge-2');
    expect(refused.deadLetters).toHaveLength(1);
  });
});

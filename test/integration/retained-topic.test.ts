import { ConfigResourceTypes } from 'kafkajs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { collect, connectClient, startBridge, type Received } from '../support/bridge.js';
import {
  createTopic,
  highWatermarks,
  kafkaClient,
  readRecords,
  uniqueId,
} from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

const NO_RULES = 'uplink: []\n';

/** Starts a bridge that keeps retained messages in `topic`; stopped when the test ends. */
async function bridgeWithRetainedTopic(topic: string) {
  const running = await startBridge(NO_RULES, { retained: { topic } });
  onTestFinished(() => running.stop());
  return running;
}

/** The retained messages a new subscriber to `filter` gets on the bridge at `port`. */
async function retainedFor(port: number, filter: string): Promise<Received[]> {
  const client = await connectClient(port, { protocolVersion: 5 });
  const received = collect(client);
  await client.subscribeAsync(filter, { qos: 1 });
  // they are written right after SUBACK: the PUBACK of a later publish comes after them
  await client.publishAsync(`elsewhere/${uniqueId()}`, '', { qos: 1 });
  await client.endAsync();
  return received;
}

/** The payload of `topic`'s retained message on the bridge at `port` ('' when it has none). */
async function retainedPayload(port: number, topic: string): Promise<string> {
  return (await retainedFor(port, topic))[0]?.payload ?? '';
}

describe('retained messages kept in a Kafka topic (retained.topic)', () => {
  it('survive a restart: replaced, cleared, properties and expiry kept; the topic is created compacted', async () => {
    const topic = `retained-${uniqueId()}`;
    const first = await startBridge(NO_RULES, { retained: { topic } });
    const publisher = await connectClient(first.mqttPort, { protocolVersion: 5 });
    await publisher.publishAsync('r/state', 'first', { qos: 1, retain: true });
    await publisher.publishAsync('r/state', 'second', { qos: 1, retain: true });
    await publisher.publishAsync('r/gone', 'soon cleared', { qos: 1, retain: true });
    await publisher.publishAsync('r/gone', '', { qos: 1, retain: true });
    await publisher.publishAsync('r/props', 'with properties', {
      qos: 2,
      retain: true,
      properties: {
        contentType: 'text/plain',
        responseTopic: 'replies/x',
        correlationData: Buffer.from([0, 1, 2]),
        userProperties: { site: 'north' },
        messageExpiryInterval: 300,
      },
    });
    await publisher.publishAsync('r/expiring', 'gone before the restart ends', {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 1 },
    });
    publisher.publish('r/zero', 'QoS 0 too', { qos: 0, retain: true });
    await publisher.endAsync();
    // stopping drains what waits for Kafka, the QoS 0 change included
    await first.stop();

    const admin = kafkaClient().admin();
    await admin.connect();
    onTestFinished(() => admin.disconnect());
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy'] },
      ],
    });
    expect(resources[0]?.configEntries[0]?.configValue).toBe('compact');
    // r/gone's clearing is a tombstone
    const records = await readRecords(
      topic,
      (await highWatermarks(topic)).reduce((a, b) => a + b),
    );
    const gone = records.filter((record) => record.key?.toString() === 'r/gone');
    expect(gone.map((record) => record.value === null)).toEqual([false, true]);

    await new Promise((resolve) => setTimeout(resolve, 1_000)); // r/expiring's 1 s runs out
    const second = await bridgeWithRetainedTopic(topic);
    const received = await retainedFor(second.mqttPort, 'r/#');
    const byTopic = new Map(received.map((message) => [message.topic, message]));
    expect([...byTopic.keys()].sort()).toEqual(['r/props', 'r/state', 'r/zero']);
    expect(byTopic.get('r/state')?.payload).toBe('second');
    expect(byTopic.get('r/zero')?.payload).toBe('QoS 0 too');
    const props = byTopic.get('r/props')?.packet;
    expect(props?.retain).toBe(true);
    expect(props?.qos).toBe(1);
    expect(props?.properties).toMatchObject({
      contentType: 'text/plain',
      responseTopic: 'replies/x',
      correlationData: Buffer.from([0, 1, 2]),
      userProperties: { site: 'north' },
    });
    expect(props?.properties?.messageExpiryInterval).toBeGreaterThan(290);
    expect(props?.properties?.messageExpiryInterval).toBeLessThanOrEqual(300);
  });

  it('bridges sharing the topic converge: a retained message or its clearing on one reaches the other', async () => {
    const topic = await createTopic('retained-shared', 1, {
      configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
    });
    const a = await bridgeWithRetainedTopic(topic);
    const b = await bridgeWithRetainedTopic(topic);
    const onA = await connectClient(a.mqttPort, { protocolVersion: 5 });
    const onB = await connectClient(b.mqttPort, { protocolVersion: 5 });
    await onA.publishAsync('c/x', 'from a', { qos: 1, retain: true });
    await waitFor(async () => (await retainedPayload(b.mqttPort, 'c/x')) === 'from a');

    await onB.publishAsync('c/x', '', { qos: 1, retain: true });
    await onB.publishAsync('c/y', 'from b', { qos: 1, retain: true });
    await waitFor(async () => (await retainedPayload(a.mqttPort, 'c/y')) === 'from b');
    expect(await retainedPayload(a.mqttPort, 'c/x')).toBe('');

    // both write one topic at once: each ends with what Kafka holds last
    for (let round = 0; round < 20; round++) {
      onA.publish('c/race', `a${round}`, { qos: 0, retain: true });
      onB.publish('c/race', `b${round}`, { qos: 0, retain: true });
    }
    const last = async (): Promise<string> => {
      const count = (await highWatermarks(topic)).reduce((sum, high) => sum + high);
      const records = await readRecords(topic, count);
      const race = records.filter((record) => record.key?.toString() === 'c/race');
      const value = race.at(-1)?.value;
      return value?.toString() ?? ''; // the value is the payload
    };
    await waitFor(async () => (await last()).endsWith('19'));
    const inKafka = await last();
    await waitFor(async () => (await retainedPayload(a.mqttPort, 'c/race')) === inKafka);
    await waitFor(async () => (await retainedPayload(b.mqttPort, 'c/race')) === inKafka);
  });
});

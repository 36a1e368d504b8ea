import type { Producer } from 'kafkajs';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { connectedProducer, createTopic } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

/** A session queue this small overflows at once under a burst from Kafka. */
const MAX_QUEUED = 20;
const STALL_MS = 1_000;

let running: RunningBridge;
let producer: Producer;
let topic: string;

beforeAll(async () => {
  topic = await createTopic('dl-burst', 1);
  running = await startBridge(
    `
downlink:
  - name: burst
    from: ${topic}
    to: { topic: 'devices/{key}/commands', qos: 1 }
`,
    {
      mqtt: { maxQueuedMessages: MAX_QUEUED },
      downlink: { slowSubscriberWaitMs: STALL_MS },
    },
  );
  producer = await connectedProducer();
});

afterAll(async () => {
  await producer.disconnect();
  await running.stop();
});

/** A device taking at most 5 QoS 1 messages at once; each PUBACK `ackDelayMs` late (never: -1). */
async function slowDevice(clientId: string, ackDelayMs: number): Promise<MqttClient> {
  const client = await connectClient(running.mqttPort, {
    clientId,
    protocolVersion: 5,
    properties: { receiveMaximum: 5 },
  });
  client.handleMessage = (_packet, done) => {
    if (ackDelayMs >= 0) setTimeout(done, ackDelayMs);
  };
  return client;
}

async function burst(key: string, count: number): Promise<string[]> {
  const values = Array.from({ length: count }, (_, i) => `${key}-${i}`);
  await producer.send({ topic, messages: values.map((value) => ({ key, value })) });
  return values;
}

describe('downlink backpressure', () => {
  it('waits for a slow online device instead of overflowing its queue: every command arrives, in order', async () => {
    const device = await slowDevice('slow-1', 1);
    const received = collect(device);
    await device.subscribeAsync('devices/slow-1/commands', { qos: 1 });
    const droppedBefore = await running.metric('bridge_mqtt_messages_dropped_total');

    const sent = await burst('slow-1', 600);

    await waitFor(() => received.length === sent.length, { timeoutMs: 30_000 });
    expect(received.map(({ payload }) => payload)).toEqual(sent);
    expect(await running.metric('bridge_mqtt_messages_dropped_total')).toBe(droppedBefore);
    expect(await running.metric('bridge_downlink_queue_waits_total')).toBeGreaterThan(0);
  });

  it('lets a stalled device go after downlink.slowSubscriberWaitMs: others get everything, its overflow is dropped and counted', async () => {
    const stalled = await slowDevice('stalled', -1);
    await stalled.subscribeAsync('devices/shared/commands', { qos: 1 });
    const reader = await slowDevice('reader', 0);
    const received = collect(reader);
    await reader.subscribeAsync('devices/shared/commands', { qos: 1 });
    const droppedBefore = await running.metric('bridge_mqtt_messages_dropped_total');

    const sent = await burst('shared', 300);

    await waitFor(() => received.length === sent.length, { timeoutMs: 30_000 });
    expect(received.map(({ payload }) => payload)).toEqual(sent);
    // the stalled device holds 5 in flight and MAX_QUEUED queued: the rest overflowed
    expect(await running.metric('bridge_mqtt_messages_dropped_total')).toBe(
      droppedBefore + sent.length - 5 - MAX_QUEUED,
    );
  });
});

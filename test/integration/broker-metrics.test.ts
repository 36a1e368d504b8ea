import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { connectedProducer, createTopic } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

/* The metrics that answer "who is here and how long do devices wait". */

let running: RunningBridge;
let producer: Producer;
const topics: Record<string, string> = {};

beforeAll(async () => {
  for (const name of ['telemetry', 'orders']) topics[name] = await createTopic(`bm-${name}`, 2);
  running = await startBridge(`
uplink:
  - name: telemetry
    from: telemetry/#
    to: { topic: ${topics.telemetry} }
downlink:
  - name: orders
    from: ${topics.orders}
    to: { topic: 'orders/{key}', qos: 1 }
`);
  producer = await connectedProducer();
});

afterAll(async () => {
  await producer.disconnect();
  await running.stop();
});

describe('broker metrics', () => {
  it('counts sessions online and offline, subscriptions, and bytes both ways', async () => {
    const bytesBefore = await running.metric('bridge_mqtt_received_bytes_total');
    const kept = await connectClient(running.mqttPort, { clientId: 'kept', clean: false });
    await kept.subscribeAsync(['a/b', 'c/#'], { qos: 1 });
    await kept.endAsync();
    const online = await connectClient(running.mqttPort, { clientId: 'online' });
    await online.subscribeAsync('x', { qos: 0 });

    expect(await running.metric('bridge_mqtt_sessions{state="online"}')).toBe(1);
    expect(await running.metric('bridge_mqtt_sessions{state="offline"}')).toBe(1);
    expect(await running.metric('bridge_mqtt_subscriptions')).toBe(3);
    expect(await running.metric('bridge_mqtt_received_bytes_total')).toBeGreaterThan(bytesBefore);
    expect(await running.metric('bridge_mqtt_sent_bytes_total')).toBeGreaterThan(0);
    const sentBefore = await running.metric('bridge_mqtt_publishes_sent_total');
    await online.publishAsync('x', 'to myself');
    await waitFor(
      async () => (await running.metric('bridge_mqtt_publishes_sent_total')) === sentBefore + 1,
    );
  });

  it('times QoS 1 publishes until their PUBACK (one in 8)', async () => {
    const before = await running.metric('bridge_mqtt_puback_seconds_count');
    const device = await connectClient(running.mqttPort, { clientId: 'timed' });
    for (let i = 0; i < 16; i++) await device.publishAsync('telemetry/t', `m${i}`, { qos: 1 });
    expect(await running.metric('bridge_mqtt_puback_seconds_count')).toBe(before + 2);
    expect(await running.metric('bridge_mqtt_puback_seconds_sum')).toBeGreaterThan(0);
  });

  it('reports the downlink consumer lag of the partitions it reads', async () => {
    const device = await connectClient(running.mqttPort, { clientId: 'o1' });
    const received = collect(device);
    await device.subscribeAsync('orders/o1', { qos: 1 });
    await producer.send({ topic: topics.orders ?? '', messages: [{ key: 'o1', value: 'go' }] });
    await waitFor(() => received.length === 1);
    await waitFor(async () => {
      const text = await (await fetch(`${running.httpUrl}/metrics`)).text();
      return (
        text.includes(`bridge_downlink_consumer_lag{group=`) && text.includes(topics.orders ?? '')
      );
    });
  });
});

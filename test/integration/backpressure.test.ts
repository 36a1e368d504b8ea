import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import {
  canPauseKafka,
  createTopic,
  pauseKafka,
  readRecords,
  resumeKafka,
} from '../support/kafka-helpers.js';
import { RawClient } from '../support/raw-client.js';
import { waitFor } from '../support/wait-for.js';

let running: RunningBridge;
let topic: string;

beforeAll(async () => {
  topic = await createTopic('backpressure');
  running = await startBridge(
    `
uplink:
  - name: all
    from: bp/#
    to: { topic: ${topic} }
`,
    { kafka: { maxPendingRecords: 10 } },
  );
});

afterAll(async () => {
  await running.stop();
});

describe('uplink backpressure', () => {
  it.runIf(canPauseKafka())(
    'holds publishes beyond the budget while Kafka stalls, answers PINGs, drops QoS 0, and catches up in order',
    async () => {
      const raw = await RawClient.connect(running.mqttPort);
      await raw.handshake({ clientId: 'bp-device', protocolVersion: 4 });
      const droppedBefore = await running.metric('bridge_mqtt_messages_dropped_total');
      await pauseKafka();
      try {
        for (let id = 1; id <= 30; id++) {
          raw.send({
            cmd: 'publish',
            topic: 'bp/d',
            payload: Buffer.from(String(id)),
            qos: 1,
            dup: false,
            retain: false,
            messageId: id,
          });
        }
        raw.send({
          cmd: 'publish',
          topic: 'bp/d',
          payload: Buffer.from('qos0'),
          qos: 0,
          dup: false,
          retain: false,
        });
        await waitFor(async () => (await running.metric('bridge_kafka_congested')) === 1);
        raw.send({ cmd: 'pingreq' });
        await raw.next('pingresp');
        await waitFor(
          async () =>
            (await running.metric('bridge_mqtt_messages_dropped_total')) === droppedBefore + 1,
        );
        expect(raw.packets.filter((packet) => packet.cmd === 'puback')).toHaveLength(0);
      } finally {
        await resumeKafka();
      }
      const acks: number[] = [];
      while (acks.length < 30) acks.push((await raw.next('puback', 30_000)).messageId ?? 0);
      expect(acks).toEqual(Array.from({ length: 30 }, (_, index) => index + 1));
      expect(raw.closed).toBe(false);
      const records = await readRecords(topic, 30);
      expect(records.map((record) => record.value?.toString())).toEqual(
        Array.from({ length: 30 }, (_, index) => String(index + 1)),
      );
      expect(await running.metric('bridge_kafka_congested')).toBe(0);
    },
  );
});

describe('slow subscribers', () => {
  it('a subscriber that stops reading costs only its own messages: others and the uplink go on', async () => {
    const stalled = await RawClient.connect(running.mqttPort);
    await stalled.handshake({ clientId: 'stalled', protocolVersion: 4 });
    await stalled.subscribe('bp/fanout', 0);
    stalled.pauseReading();
    const healthy = await connectClient(running.mqttPort, { clientId: 'healthy' });
    let received = 0;
    healthy.on('message', () => received++);
    await healthy.subscribeAsync('bp/fanout', { qos: 0 });
    const publisher = await connectClient(running.mqttPort, { clientId: 'fanout-publisher' });
    const droppedBefore = await running.metric('bridge_mqtt_messages_dropped_total');
    const payload = Buffer.alloc(64 * 1024, 'x');
    const count = 200; // 12.5 MiB to each subscriber: far beyond mqtt.maxWriteBuffer and TCP buffers
    for (let index = 0; index < count; index++) {
      await publisher.publishAsync('bp/fanout', payload, { qos: 1 });
    }
    await waitFor(() => received === count, { timeoutMs: 30_000 });
    expect(await running.metric('bridge_mqtt_messages_dropped_total')).toBeGreaterThan(
      droppedBefore,
    );
    expect(stalled.closed).toBe(false);
  });
});

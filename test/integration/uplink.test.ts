import type { IPublishPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import {
  canPauseKafka,
  createTopic,
  highWatermarks,
  pauseKafka,
  readRecords,
  resumeKafka,
} from '../support/kafka-helpers.js';
import { RawClient } from '../support/raw-client.js';
import { waitFor } from '../support/wait-for.js';

let telemetry: string;
let events: string;
let running: RunningBridge;

beforeAll(async () => {
  telemetry = await createTopic();
  events = await createTopic();
  running = await startBridge(`
uplink:
  - name: telemetry
    from: devices/{deviceId}/telemetry/#
    to:
      topic: ${telemetry}
      key: "{deviceId}"
      headers:
        source: mqtt
        device: "{deviceId}"
  - name: events
    from: devices/{deviceId}/events/{eventType}
    to:
      topic: ${events}
      key: "{deviceId}"
      headers:
        event-type: "{eventType}"
`);
});

afterAll(async () => {
  await running.stop();
});

/** Headers of a consumed record as strings (repeated headers as lists). */
function headerStrings(headers: Record<string, unknown>): Record<string, string | string[]> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [
      name,
      Array.isArray(value) ? value.map(String) : String(value),
    ]),
  );
}

describe.each([
  { version: 'MQTT 3.1.1', protocolVersion: 4 as const },
  { version: 'MQTT 5', protocolVersion: 5 as const },
])('uplink from an $version client', ({ protocolVersion }) => {
  it.each([0, 1] as const)(
    'produces a QoS %i publish with its topic, key, value and headers',
    async (qos) => {
      const topic = await createTopic();
      const bridge = await startBridge(`
uplink:
  - name: telemetry
    from: devices/{deviceId}/telemetry/#
    to:
      topic: ${topic}
      key: "{deviceId}"
      headers: { source: mqtt, device: "{deviceId}" }
`);
      try {
        const clientId = `dev-${protocolVersion}-${qos}`;
        const client = await connectClient(bridge.mqttPort, { protocolVersion, clientId });
        const payload = Buffer.from([0x00, 0xff, 0x10, 0x7b]); // not UTF-8: bytes must pass unchanged
        await client.publishAsync('devices/d42/telemetry/temp', payload, { qos });

        const [record] = await readRecords(topic, 1);
        expect(record?.topic).toBe(topic);
        expect(record?.key?.toString()).toBe('d42');
        expect(record?.value).toEqual(payload);
        expect(headerStrings(record?.headers ?? {})).toMatchObject({
          'mqtt-topic': 'devices/d42/telemetry/temp',
          'mqtt-client-id': clientId,
          source: 'mqtt',
          device: 'd42',
        });
      } finally {
        await bridge.stop();
      }
    },
  );
});

describe('uplink', () => {
  it('passes MQTT 5 user properties through as headers, repeated names included', async () => {
    const client = await connectClient(running.mqttPort, { protocolVersion: 5, clientId: 'props' });
    await client.publishAsync('devices/p1/events/boot', 'up', {
      qos: 1,
      properties: { userProperties: { firmware: '1.2.3', zone: ['a', 'b'] } },
    });
    const records = await readRecords(events, 1);
    expect(headerStrings(records[0]?.headers ?? {})).toMatchObject({
      firmware: '1.2.3',
      zone: ['a', 'b'],
      'event-type': 'boot',
      'mqtt-topic': 'devices/p1/events/boot',
    });
  });

  it('keeps the order of one device’s publishes in Kafka', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'order' });
    const count = 500;
    await Promise.all(
      Array.from({ length: count }, (_, index) =>
        client.publishAsync('devices/ordered/telemetry', String(index), {
          qos: (index % 2) as 0 | 1,
        }),
      ),
    );
    const records = (await readRecords(telemetry, count, { timeoutMs: 30_000 })).filter(
      (record) => record.key?.toString() === 'ordered',
    );
    expect(records.map((record) => Number(record.value?.toString()))).toEqual(
      Array.from({ length: count }, (_, index) => index),
    );
  });

  it('does not send unmapped topics to Kafka; MQTT 5 PUBACK says 0x10 (no matching subscribers)', async () => {
    const before = await running.metric('bridge_mqtt_publishes_unmapped_total');
    const client = await connectClient(running.mqttPort, {
      protocolVersion: 5,
      clientId: 'unmapped',
    });
    const reasons: number[] = [];
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'puback' && packet.reasonCode !== undefined)
        reasons.push(packet.reasonCode);
    });
    await client.publishAsync('elsewhere/x', 'lost?', { qos: 1 });
    await client.publishAsync('devices/u1/nothing', 'lost?', { qos: 0 });
    await client.publishAsync('devices/u1/telemetry', 'marker', { qos: 1 });

    expect(reasons[0]).toBe(0x10);
    expect(await running.metric('bridge_mqtt_publishes_unmapped_total')).toBe(before + 2);
    // Had an unmapped publish reached Kafka, it would come before the marker.
    const [first] = await readRecords(telemetry, 1, {
      match: (record) => record.headers['mqtt-client-id'] === 'unmapped',
    });
    expect(first?.value?.toString()).toBe('marker');
  });

  it('never sends PUBACK before the record is readable in Kafka', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'ack-order' });
    const topicBefore = await highWatermarks(telemetry);
    const base = topicBefore.reduce((sum, partition) => sum + partition, 0);
    for (let index = 1; index <= 30; index++) {
      await client.publishAsync('devices/acked/telemetry', `n${index}`, { qos: 1 });
      // at the moment PUBACK arrived, Kafka's high watermark already covers the record
      const now = (await highWatermarks(telemetry)).reduce((sum, partition) => sum + partition, 0);
      expect(now).toBeGreaterThanOrEqual(base + index);
    }
  });

  it.runIf(canPauseKafka())(
    'holds PUBACK while Kafka does not answer and sends it once Kafka has the record',
    async () => {
      const client = await connectClient(running.mqttPort, { clientId: 'paused' });
      const received = await running.metric('bridge_mqtt_publishes_received_total');
      let acked = false;
      await pauseKafka();
      try {
        const publishing = client
          .publishAsync('devices/paused/telemetry', 'held', { qos: 1 })
          .then(() => {
            acked = true;
          });
        await waitFor(
          async () => (await running.metric('bridge_mqtt_publishes_received_total')) > received,
        );
        // the bridge has the publish; give it ample time to (wrongly) acknowledge
        await new Promise((resolve) => setTimeout(resolve, 1000));
        expect(acked).toBe(false);
        await resumeKafka();
        await publishing;
      } finally {
        await resumeKafka();
      }
      const records = await readRecords(telemetry, 1, {
        timeoutMs: 20_000,
        match: (record) => record.key?.toString() === 'paused',
      });
      expect(records[0]?.value?.toString()).toBe('held');
    },
  );

  it('produces a QoS 2 publish once, even when retransmitted with DUP before PUBREL [MQTT-4.3.3-10]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'qos2-dup', protocolVersion: 4 });
    const publish: IPublishPacket = {
      cmd: 'publish',
      topic: 'devices/q2/telemetry',
      payload: Buffer.from('exactly-once'),
      qos: 2,
      messageId: 7,
      dup: false,
      retain: false,
    };
    raw.send(publish);
    raw.send({ ...publish, dup: true });
    expect((await raw.next('pubrec')).messageId).toBe(7);
    raw.send({ ...publish, dup: true });
    expect((await raw.next('pubrec')).messageId).toBe(7); // repeated PUBREC, no new record
    raw.send({ cmd: 'pubrel', messageId: 7 });
    expect((await raw.next('pubcomp')).messageId).toBe(7);
    // after PUBREL the id is free again: a new message with it is a new message
    raw.send({ ...publish, payload: Buffer.from('second') });
    await raw.next('pubrec');

    const records = await readRecords(telemetry, 2, {
      match: (record) => record.key?.toString() === 'q2',
    });
    expect(records.map((record) => record.value?.toString())).toEqual(['exactly-once', 'second']);
  });

  it('accepts QoS 2 from MQTT.js end to end', async () => {
    const client = await connectClient(running.mqttPort, {
      protocolVersion: 5,
      clientId: 'qos2-mqttjs',
    });
    await client.publishAsync('devices/q2js/telemetry', 'two', { qos: 2 });
    const records = await readRecords(telemetry, 1, {
      match: (record) => record.key?.toString() === 'q2js',
    });
    expect(records[0]?.value?.toString()).toBe('two');
  });
});

describe('QoS 2 across a reconnect', () => {
  it.runIf(canPauseKafka())(
    'answers a DUP retransmission on the new connection once Kafka has the message, and produces it once',
    async () => {
      const connect = { clientId: 'qos2-reconnect', protocolVersion: 4 as const, clean: false };
      const publish: IPublishPacket = {
        cmd: 'publish',
        topic: 'devices/q2r/telemetry',
        payload: Buffer.from('once across reconnect'),
        qos: 2,
        messageId: 11,
        dup: false,
        retain: false,
      };
      const first = await RawClient.connect(running.mqttPort);
      await first.handshake(connect);
      const received = await running.metric('bridge_mqtt_publishes_received_total');
      await pauseKafka();
      try {
        first.send(publish);
        await waitFor(
          async () => (await running.metric('bridge_mqtt_publishes_received_total')) > received,
        );
        first.destroy();
        const second = await RawClient.connect(running.mqttPort);
        expect((await second.handshake(connect)).sessionPresent).toBe(true);
        second.send({ ...publish, dup: true });
        await resumeKafka();
        expect((await second.next('pubrec', 20_000)).messageId).toBe(11);
        second.send({ cmd: 'pubrel', messageId: 11 });
        await second.next('pubcomp');
        second.send({ ...publish, messageId: 12, payload: Buffer.from('marker') });
        await second.next('pubrec');
      } finally {
        await resumeKafka();
      }
      const records = await readRecords(telemetry, 2, {
        timeoutMs: 20_000,
        match: (record) => record.key?.toString() === 'q2r',
      });
      expect(records.map((record) => record.value?.toString())).toEqual([
        'once across reconnect',
        'marker',
      ]);
    },
  );
});

import type { IPublishPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { createTopic, readRecords } from '../support/kafka-helpers.js';
import { RawClient } from '../support/raw-client.js';
import { waitFor } from '../support/wait-for.js';

/*
 * A QoS 1/2 publish is accepted (retained, delivered to local subscribers,
 * acknowledged) only when Kafka holds it. The Kafka topic here refuses records
 * over 2,000 bytes, so a large payload is refused for good.
 */

let running: RunningBridge;

beforeAll(async () => {
  const topic = await createTopic('accept', 1, {
    configEntries: [{ name: 'max.message.bytes', value: '2000' }],
  });
  running = await startBridge(`
uplink:
  - name: small-only
    from: accept/#
    to:
      topic: ${topic}
`);
});

afterAll(async () => {
  await running.stop();
});

const large = Buffer.alloc(10_000, 'x');

describe('a publish Kafka refuses', () => {
  it('is neither delivered to subscribers nor retained (MQTT 5 publisher gets the reason code)', async () => {
    const subscriber = await connectClient(running.mqttPort, { protocolVersion: 5 });
    const received: string[] = [];
    subscriber.on('message', (_topic, payload) => received.push(payload.toString()));
    await subscriber.subscribeAsync('accept/v5', { qos: 1 });

    const publisher = await RawClient.connect(running.mqttPort);
    await publisher.handshake({ clientId: 'accept-v5-publisher', protocolVersion: 5 });
    const publish = (messageId: number, payload: Buffer | string): void => {
      publisher.send(
        {
          cmd: 'publish',
          topic: 'accept/v5',
          payload,
          qos: 1,
          retain: true,
          dup: false,
          messageId,
        },
        5,
      );
    };
    publish(1, 'kept');
    expect((await publisher.next('puback')).reasonCode ?? 0).toBe(0);
    publish(2, large);
    expect((await publisher.next('puback')).reasonCode).toBe(0x97);
    publish(3, 'after');
    expect((await publisher.next('puback')).reasonCode ?? 0).toBe(0);

    await waitFor(() => received.length === 2);
    expect(received).toEqual(['kept', 'after']);

    // The retained message is the last one Kafka accepted.
    const late = await connectClient(running.mqttPort, { protocolVersion: 5 });
    const retained: string[] = [];
    late.on('message', (_topic, payload) => retained.push(payload.toString()));
    await late.subscribeAsync('accept/v5', { qos: 1 });
    await waitFor(() => retained.length === 1);
    expect(retained).toEqual(['after']);
  });

  it('is not delivered when a 3.1.1 client retransmits a refused QoS 2 publish after reconnecting', async () => {
    const subscriber = await connectClient(running.mqttPort);
    const received: IPublishPacket[] = [];
    subscriber.on('message', (_topic, _payload, packet) => received.push(packet));
    await subscriber.subscribeAsync('accept/v3', { qos: 2 });

    const session = { clientId: 'accept-v3-publisher', protocolVersion: 4 as const, clean: false };
    for (const dup of [false, true]) {
      const publisher = await RawClient.connect(running.mqttPort);
      await publisher.handshake(session);
      publisher.send({
        cmd: 'publish',
        topic: 'accept/v3',
        payload: large,
        qos: 2,
        retain: false,
        dup,
        messageId: 7,
      });
      // 3.1.1 cannot refuse a publish: the connection is closed instead of a lie.
      await publisher.waitClosed();
    }
    const publisher = await RawClient.connect(running.mqttPort);
    await publisher.handshake(session);
    publisher.send({
      cmd: 'publish',
      topic: 'accept/v3',
      payload: 'small',
      qos: 2,
      retain: false,
      dup: false,
      messageId: 8,
    });
    await publisher.next('pubrec');
    publisher.send({ cmd: 'pubrel', messageId: 8 });
    await publisher.next('pubcomp');

    await waitFor(() => received.length === 1);
    expect(received.map((packet) => packet.payload.toString())).toEqual(['small']);
  });
});

describe('a publish Kafka refuses, with a dead-letter topic', () => {
  it('goes to the dead-letter topic; MQTT 5 still gets the reason, 3.1.1 an acknowledgement', async () => {
    const small = await createTopic('accept-small', 1, {
      configEntries: [{ name: 'max.message.bytes', value: '2000' }],
    });
    const dead = await createTopic('accept-dead');
    const bridge = await startBridge(`
deadLetter: { topic: ${dead} }
uplink:
  - name: small-only
    from: dl/#
    to: { topic: ${small} }
`);
    onTestFinished(() => bridge.stop());
    const v5 = await RawClient.connect(bridge.mqttPort);
    await v5.handshake({ clientId: 'dl-v5', protocolVersion: 5 });
    v5.send(
      {
        cmd: 'publish',
        topic: 'dl/v5',
        payload: large,
        qos: 1,
        retain: false,
        dup: false,
        messageId: 1,
      },
      5,
    );
    expect((await v5.next('puback')).reasonCode).toBe(0x97);
    const v3 = await connectClient(bridge.mqttPort, { clientId: 'dl-v3' });
    await v3.publishAsync('dl/v3', large, { qos: 1 });
    expect(v3.connected).toBe(true);
    const records = await readRecords(dead, 2);
    expect(records.map((record) => record.key?.toString()).sort()).toEqual(['dl/v3', 'dl/v5']);
    expect(String(records[0]?.headers['dead-letter-error'])).toMatch(
      /^Kafka refused the record: The request included a message larger than/,
    );
    expect(await bridge.metric('bridge_uplink_dead_lettered_total')).toBe(2);
  });
});

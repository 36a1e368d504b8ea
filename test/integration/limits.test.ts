/**
 * Limits that keep memory bounded whatever clients send (issue 14), against a real bridge with
 * real MQTT clients: each refusal with the reason code MQTT 5 has for it, counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBridge, type RunningBridge } from '../support/bridge.js';
import { RawClient } from '../support/raw-client.js';

let running: RunningBridge;

beforeAll(async () => {
  running = await startBridge('uplink: []\n', {
    retained: { maxMessages: 3, maxBytes: 1_000 },
    mqtt: { maxInflight: 5 },
  });
});

afterAll(async () => {
  await running.stop();
});

const publish = (topic: string, payload: string, messageId: number, retain = true) => ({
  cmd: 'publish' as const,
  topic,
  payload: Buffer.from(payload),
  qos: 1 as const,
  dup: false,
  retain,
  messageId,
});

describe('retained.maxMessages and retained.maxBytes', () => {
  it('refuses a retained publish beyond them with 0x97, keeps taking the rest', async () => {
    const client = await RawClient.connect(running.mqttPort);
    await client.handshake({ clientId: 'retainer', protocolVersion: 5 });
    const codes: number[] = [];
    const send = async (packet: ReturnType<typeof publish>) => {
      client.send(packet, 5);
      codes.push((await client.next('puback')).reasonCode ?? 0);
    };
    for (const [index, topic] of ['r/1', 'r/2', 'r/3', 'r/4'].entries()) {
      await send(publish(topic, 'on', index + 1));
    }
    await send(publish('r/1', 'replaced', 5)); // a replacement fits
    await send(publish('r/5', 'not retained', 6, false)); // and so does any other publish
    await send(publish('r/6', 'x'.repeat(2_000), 7)); // beyond maxBytes
    await send(publish('r/2', '', 8)); // clearing frees room
    await send(publish('r/4', 'now fits', 9));
    // 0x10: no subscriber, stored in Kafka or not mapped
    expect(codes.map((code) => (code === 0x10 ? 0 : code))).toEqual([
      0, 0, 0, 0x97, 0, 0, 0x97, 0, 0,
    ]);
    expect(await running.metric('bridge_mqtt_retained_refused_total')).toBe(2);
    expect(await running.metric('bridge_mqtt_retained_messages')).toBe(3);
  });
});

describe('mqtt.maxInflight', () => {
  it('holds at most that many unacknowledged messages for a 3.1.1 client that never PUBACKs', async () => {
    const subscriber = await RawClient.connect(running.mqttPort);
    await subscriber.handshake({ clientId: 'never-acks', protocolVersion: 4 });
    expect((await subscriber.subscribe('inflight/#', 1)).granted).toEqual([1]);
    const publisher = await RawClient.connect(running.mqttPort);
    await publisher.handshake({ clientId: 'inflight-pub', protocolVersion: 4 });
    for (let index = 1; index <= 20; index++) {
      publisher.send(publish('inflight/x', `m${index}`, index, false), 4);
      await publisher.next('puback');
    }
    const first: number[] = [];
    for (let index = 0; index < 5; index++)
      first.push((await subscriber.next('publish')).messageId ?? 0);
    // a marker through another subscriber shows the bridge has handled all 20
    const watcher = await RawClient.connect(running.mqttPort);
    await watcher.handshake({ clientId: 'inflight-watch', protocolVersion: 4 });
    await watcher.subscribe('inflight/#', 0);
    publisher.send(publish('inflight/x', 'marker', 21, false), 4);
    await publisher.next('puback');
    expect((await watcher.next('publish')).payload.toString()).toBe('marker');
    expect(subscriber.packets.filter((packet) => packet.cmd === 'publish')).toHaveLength(0);
    // each PUBACK lets one more through
    subscriber.send({ cmd: 'puback', messageId: first[0] }, 4);
    expect((await subscriber.next('publish')).payload.toString()).toBe('m6');
  });
});

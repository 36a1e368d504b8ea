/**
 * Limits that keep memory bounded whatever clients send (issue 14), against a real bridge with
 * real MQTT clients: each refusal with the reason code MQTT 5 has for it, counted.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startBridge, type RunningBridge } from '../support/bridge.js';
import mqttPacket from 'mqtt-packet';
import { RawClient } from '../support/raw-client.js';
import { waitFor } from '../support/wait-for.js';

let running: RunningBridge;

beforeAll(async () => {
  running = await startBridge('uplink: []\n', {
    retained: { maxMessages: 3, maxBytes: 1_000 },
    mqtt: {
      maxInflight: 5,
      maxTopicLevels: 8,
      maxTopicLength: 4_000,
      maxSubscriptionsPerClient: 3,
      maxDelayedPerClient: 2,
      maxPublishRate: 10,
      maxSessionExpiry: 1,
    },
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

/** The refusals of one limit counted so far. */
const refusals = (limit: string) =>
  running.metric(`bridge_mqtt_limit_refusals_total{limit="${limit}"}`);

/** Runs `act`; returns how many refusals of `limit` it caused. */
async function refusedBy(limit: string, act: () => Promise<void>): Promise<number> {
  const before = await refusals(limit);
  await act();
  return (await refusals(limit)) - before;
}

/** A topic of `count` one-letter levels. */
const levels = (count: number) => Array.from({ length: count }, () => 'a').join('/');

describe('mqtt.maxTopicLevels and mqtt.maxTopicLength', () => {
  it('refuses a thousand-level filter and publish, and a topic too long, counting each', async () => {
    const client = await RawClient.connect(running.mqttPort);
    await client.handshake({ clientId: 'deep', protocolVersion: 5 });
    client.send(
      {
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [
          { topic: levels(1_000), qos: 1 },
          { topic: `$share/g/${levels(8)}`, qos: 1 }, // the share prefix is not counted
          { topic: `long/${'x'.repeat(5_000)}`, qos: 1 },
          { topic: levels(8), qos: 1 },
        ],
      },
      5,
    );
    expect((await client.next('suback')).granted).toEqual([0x8f, 1, 0x8f, 1]);
    client.send(publish(levels(1_000), 'deep', 2, false), 5);
    const refused = await client.next('puback');
    expect(refused.reasonCode).toBe(0x90);
    client.send(publish(levels(8), 'fits', 3, false), 5);
    expect((await client.next('publish')).payload.toString()).toBe('fits');
    expect(await refusals('mqtt.maxTopicLevels')).toBe(2);
    expect(await refusals('mqtt.maxTopicLength')).toBe(1);
  });

  it('acknowledges and drops a publish too deep from a 3.1.1 client, which cannot be told', async () => {
    const watcher = await RawClient.connect(running.mqttPort);
    await watcher.handshake({ clientId: 'deep-watch', protocolVersion: 4 });
    await watcher.subscribe('a/#', 0);
    const client = await RawClient.connect(running.mqttPort);
    await client.handshake({ clientId: 'deep-311', protocolVersion: 4 });
    client.send(publish(levels(9), 'deep', 1, false), 4);
    await client.next('puback');
    client.send(publish('a/shallow', 'marker', 2, false), 4);
    await client.next('puback');
    expect((await watcher.next('publish')).payload.toString()).toBe('marker');
    expect(watcher.packets).toEqual([]);
  });

  it('refuses a CONNECT whose will topic is too deep (MQTT 5: 0x90)', async () => {
    const client = await RawClient.connect(running.mqttPort);
    const connack = await client.handshake({
      clientId: 'deep-will',
      protocolVersion: 5,
      will: { topic: levels(9), payload: Buffer.from('bye'), qos: 0, retain: false },
    });
    expect(connack.reasonCode).toBe(0x90);
    await client.waitClosed();
  });
});

describe('mqtt.maxSubscriptionsPerClient', () => {
  it('refuses filters beyond it with 0x97; a replacement always fits; an unsubscribe frees room', async () => {
    const client = await RawClient.connect(running.mqttPort);
    await client.handshake({ clientId: 'many-subs', protocolVersion: 5 });
    const subscribe = async (messageId: number, ...topics: string[]) => {
      const subscriptions = topics.map((topic) => ({ topic, qos: 0 as const }));
      client.send({ cmd: 'subscribe', messageId, subscriptions }, 5);
      return (await client.next('suback')).granted;
    };
    expect(await subscribe(1, 's/1', 's/2', 's/3', 's/4')).toEqual([0, 0, 0, 0x97]);
    expect(await subscribe(2, 's/1')).toEqual([0]);
    client.send({ cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['s/2'] }, 5);
    await client.next('unsuback');
    expect(await subscribe(4, 's/4', 's/5')).toEqual([0, 0x97]);
    expect(await refusals('mqtt.maxSubscriptionsPerClient')).toBe(2);

    const v3 = await RawClient.connect(running.mqttPort);
    await v3.handshake({ clientId: 'many-subs-311', protocolVersion: 4 });
    v3.send(
      {
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: ['a', 'b', 'c', 'd'].map((topic) => ({ topic, qos: 1 as const })),
      },
      4,
    );
    expect((await v3.next('suback')).granted).toEqual([1, 1, 1, 0x80]);
  });
});

describe('mqtt.maxDelayedPerClient', () => {
  it('refuses a client its third waiting $delay message (0x97) while another client still gets room', async () => {
    const codes = async (clientId: string, count: number) => {
      const client = await RawClient.connect(running.mqttPort);
      await client.handshake({ clientId, protocolVersion: 5 });
      const result: number[] = [];
      for (let index = 1; index <= count; index++) {
        client.send(publish(`$delay/3600/later/${clientId}`, 'x', index, false), 5);
        result.push((await client.next('puback')).reasonCode ?? 0);
      }
      return result;
    };
    expect(await codes('delayer-a', 3)).toEqual([0, 0, 0x97]);
    expect(await codes('delayer-b', 1)).toEqual([0]);
    expect(await refusals('mqtt.maxDelayedPerClient')).toBe(1);
  });
});

describe('mqtt.maxPublishRate', () => {
  it('disconnects an MQTT 5 client beyond it with 0x96, after the publishes within it', async () => {
    const watcher = await RawClient.connect(running.mqttPort);
    await watcher.handshake({ clientId: 'rate-watch', protocolVersion: 5 });
    await watcher.subscribe('rate5/#', 0);
    const client = await RawClient.connect(running.mqttPort);
    await client.handshake({ clientId: 'rate-5', protocolVersion: 5 });
    const burst = Array.from({ length: 30 }, (_, index) =>
      mqttPacket.generate(
        {
          cmd: 'publish',
          topic: 'rate5/x',
          payload: Buffer.from(`m${index}`),
          qos: 0,
          dup: false,
          retain: false,
        },
        { protocolVersion: 5 },
      ),
    );
    const refused = await refusedBy('mqtt.maxPublishRate', async () => {
      client.send(Buffer.concat(burst));
      expect((await client.next('disconnect')).reasonCode).toBe(0x96);
      await client.waitClosed();
    });
    expect(refused).toBe(1);
    // one second of publishes (10) was within the rate
    await waitFor(() => watcher.packets.filter((packet) => packet.cmd === 'publish').length === 10);
  });

  it('stops reading a 3.1.1 client beyond it until the rate holds again, losing nothing', async () => {
    const client = await RawClient.connect(running.mqttPort);
    await client.handshake({ clientId: 'rate-311', protocolVersion: 4 });
    const burst = Array.from({ length: 30 }, (_, index) =>
      mqttPacket.generate(publish('rate311/x', `m${index}`, index + 1, false), {
        protocolVersion: 4,
      }),
    );
    const sentAt = performance.now();
    const refused = await refusedBy('mqtt.maxPublishRate', async () => {
      client.send(Buffer.concat(burst));
      for (let index = 0; index < 30; index++) await client.next('puback');
      // 20 publishes beyond a bucket of 10 at 10 a second: the socket is not read for 2 s
      client.send({ cmd: 'pingreq' }, 4);
      await client.next('pingresp');
    });
    expect(performance.now() - sentAt).toBeGreaterThanOrEqual(1_900);
    expect(refused).toBe(1);
    expect(client.closed).toBe(false);
  });
});

describe('mqtt.maxSessionExpiry', () => {
  it('ends a 3.1.1 persistent session (for ever in MQTT) that long after its client left', async () => {
    const connect = async () => {
      const client = await RawClient.connect(running.mqttPort);
      const connack = await client.handshake({
        clientId: 'persistent-311',
        protocolVersion: 4,
        clean: false,
      });
      client.send({ cmd: 'disconnect' }, 4);
      await client.waitClosed();
      return connack.sessionPresent;
    };
    expect(await connect()).toBe(false);
    expect(await connect()).toBe(true);
    // each look resumes the session; 1.5 s apart, its 1 s runs out in between
    await waitFor(async () => !(await connect()), { intervalMs: 1_500, timeoutMs: 10_000 });
  });

  it('is 2 hours by default: an MQTT 5 client asking for ever is told 7,200 s', async () => {
    const defaults = await startBridge('uplink: []\n');
    onTestFinished(() => defaults.stop());
    const client = await RawClient.connect(defaults.mqttPort);
    const connack = await client.handshake({
      clientId: 'forever',
      protocolVersion: 5,
      clean: true,
      properties: { sessionExpiryInterval: 0xffffffff },
    });
    expect(connack.properties?.sessionExpiryInterval).toBe(7_200);
  });
});

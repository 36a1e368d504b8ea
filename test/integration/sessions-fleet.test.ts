/**
 * A fleet of bridges sharing their sessions in Kafka (sessions.store kafka, issue 13): clients
 * connect to any bridge; a subscriber on one receives what is published on another, at its QoS,
 * once; a client id moving to another bridge takes its session along (the old connection gets
 * DISCONNECT 0x8E); shared subscriptions spread over members on every bridge; a downlink
 * command reaches its device wherever it is connected.
 */
import type { IPublishPacket } from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeProcess, stopAllBridgeProcesses } from '../support/bridge-process.js';
import { connectClient } from '../support/bridge.js';
import {
  connectedProducer,
  createTopic,
  kafkaBrokers,
  uniqueId,
} from '../support/kafka-helpers.js';
import { RawClient } from '../support/raw-client.js';
import { waitFor } from '../support/wait-for.js';

let a: BridgeProcess;
let b: BridgeProcess;
let commandsTopic: string;

beforeAll(async () => {
  const id = uniqueId();
  commandsTopic = await createTopic('fleet-commands', 3);
  const mappings = [
    'uplink: []',
    'downlink:',
    '  - name: commands',
    `    from: ${commandsTopic}`,
    "    to: { topic: 'devices/{key}/cmd', qos: 1 }",
    '',
  ].join('\n');
  const start = (name: string) =>
    BridgeProcess.start({
      brokers: kafkaBrokers().join(','),
      mappings,
      env: {
        BRIDGE_SESSIONS_STORE: 'kafka',
        BRIDGE_SESSIONS_TOPIC: `fleet-sessions-${id}`,
        BRIDGE_SESSIONS_MESSAGES_TOPIC: `fleet-messages-${id}`,
        BRIDGE_SESSIONS_PARTITIONS: '3',
        BRIDGE_INSTANCE_ID: `${name}-${id}`,
        BRIDGE_DOWNLINK_GROUP_ID: `fleet-downlink-${id}`,
        BRIDGE_AUTH_ALLOW_ANONYMOUS: 'true',
      },
    });
  a = await start('a');
  b = await start('b');
}, 90_000);

afterAll(async () => {
  await stopAllBridgeProcesses();
});

/**
 * Publishes probes through `publisher` until `subscriber` gets one: the other bridge has read
 * the subscriber's session by then.
 */
async function untilRouted(publisher: MqttClient, subscriber: MqttClient, topic: string) {
  let seen = false;
  const onMessage = (received: string) => {
    if (received === topic) seen = true;
  };
  subscriber.on('message', onMessage);
  await waitFor(
    async () => {
      await publisher.publishAsync(topic, 'probe', { qos: 0 });
      return seen;
    },
    { what: `a probe on ${topic} routed across bridges`, intervalMs: 100 },
  );
  subscriber.off('message', onMessage);
}

const persistent = { clean: false, properties: { sessionExpiryInterval: 600 } };

describe('a fleet of bridges', () => {
  it('delivers across bridges at the subscribed QoS, once and in order', async () => {
    const topic = `x/${uniqueId()}`;
    const received: IPublishPacket[] = [];
    const subscriber = await connectClient(a.mqttPort, {
      clientId: `fleet-sub-${uniqueId()}`,
      protocolVersion: 5,
      ...persistent,
    });
    subscriber.on('message', (_topic, _payload, packet) => {
      if (packet.payload.toString() !== 'probe') received.push(packet);
    });
    await subscriber.subscribeAsync([`${topic}/one`, `${topic}/probe`], { qos: 1 });
    await subscriber.subscribeAsync(`${topic}/two`, { qos: 2 });
    const publisher = await connectClient(b.mqttPort, { clientId: `fleet-pub-${uniqueId()}` });
    await untilRouted(publisher, subscriber, `${topic}/probe`);

    for (let index = 0; index < 100; index++) {
      await publisher.publishAsync(`${topic}/one`, `one-${index}`, { qos: 1 });
    }
    for (let index = 0; index < 50; index++) {
      await publisher.publishAsync(`${topic}/two`, `two-${index}`, { qos: 2 });
    }
    await waitFor(() => received.length >= 150, { what: '150 messages across bridges' });
    const payloads = (suffix: string) =>
      received
        .filter((packet) => packet.topic.endsWith(suffix))
        .map((packet) => packet.payload.toString());
    expect(payloads('/one')).toEqual(Array.from({ length: 100 }, (_, index) => `one-${index}`));
    expect(payloads('/two')).toEqual(Array.from({ length: 50 }, (_, index) => `two-${index}`));
    expect(
      received
        .filter((packet) => packet.topic.endsWith('/two'))
        .every((packet) => packet.qos === 2),
    ).toBe(true);
    await subscriber.endAsync();
    await publisher.endAsync();
  });

  it('moves a session to the bridge its client reconnects to: the old connection gets 0x8E', async () => {
    const clientId = `mover-${uniqueId()}`;
    const topic = `move/${uniqueId()}`;
    const onA = await RawClient.connect(a.mqttPort);
    await onA.handshake({ clientId, protocolVersion: 5, ...persistent });
    expect((await onA.subscribe(`${topic}/#`, 1)).granted).toEqual([1]);

    const onB = await RawClient.connect(b.mqttPort);
    const connack = await onB.handshake({ clientId, protocolVersion: 5, ...persistent });
    expect(connack.sessionPresent).toBe(true);
    expect((await onA.next('disconnect')).reasonCode).toBe(0x8e);
    await onA.waitClosed();

    // its subscription came along: a publish on A reaches it on B
    const publisher = await connectClient(a.mqttPort, { clientId: `move-pub-${uniqueId()}` });
    await publisher.publishAsync(`${topic}/x`, 'moved', { qos: 1 });
    const delivered = await onB.next('publish');
    expect(delivered.payload.toString()).toBe('moved');
    onB.send({ cmd: 'puback', messageId: delivered.messageId }, 5);
    await publisher.endAsync();
  });

  it('keeps a session that moves right after it was created (before its first save)', async () => {
    for (let index = 0; index < 20; index++) {
      const clientId = `quick-mover-${index}-${uniqueId()}`;
      const onA = await RawClient.connect(a.mqttPort);
      await onA.handshake({ clientId, protocolVersion: 5, ...persistent });
      const onB = await RawClient.connect(b.mqttPort);
      const connack = await onB.handshake({ clientId, protocolVersion: 5, ...persistent });
      expect(connack.sessionPresent).toBe(true);
    }
  });

  it('spreads a shared subscription over members on both bridges, each message to one', async () => {
    const group = `g${uniqueId()}`;
    const topic = `jobs/${uniqueId()}`;
    const got = new Map<string, string[]>();
    const member = async (port: number, name: string) => {
      const client = await connectClient(port, {
        clientId: `${name}-${uniqueId()}`,
        protocolVersion: 5,
      });
      got.set(name, []);
      client.on('message', (_topic, payload) => got.get(name)?.push(payload.toString()));
      await client.subscribeAsync(`$share/${group}/${topic}/#`, { qos: 1 });
      return client;
    };
    const onA = await member(a.mqttPort, 'member-a');
    const onB = await member(b.mqttPort, 'member-b');
    const publisher = await connectClient(a.mqttPort, { clientId: `jobs-pub-${uniqueId()}` });
    // once A knows B's member, messages go to both
    await waitFor(
      async () => {
        await publisher.publishAsync(`${topic}/warmup`, 'warmup', { qos: 1 });
        return (got.get('member-b') ?? []).includes('warmup');
      },
      { what: "A routing to B's member" },
    );
    for (const list of got.values()) list.length = 0;
    for (let index = 0; index < 100; index++) {
      await publisher.publishAsync(`${topic}/job`, `job-${index}`, { qos: 1 });
    }
    const all = () => [...(got.get('member-a') ?? []), ...(got.get('member-b') ?? [])];
    await waitFor(() => all().length >= 100, { what: '100 jobs delivered' });
    expect(all().sort()).toEqual(Array.from({ length: 100 }, (_, index) => `job-${index}`).sort());
    expect(got.get('member-a')?.length).toBeGreaterThan(0);
    expect(got.get('member-b')?.length).toBeGreaterThan(0);
    for (const client of [onA, onB, publisher]) await client.endAsync();
  });

  it('delivers downlink commands to devices on either bridge, in order', async () => {
    const devices = [`dev-a-${uniqueId()}`, `dev-b-${uniqueId()}`];
    const received = new Map<string, string[]>(devices.map((device) => [device, []]));
    const clients = await Promise.all(
      devices.map(async (device, index) => {
        const client = await connectClient(index === 0 ? a.mqttPort : b.mqttPort, {
          clientId: device,
          protocolVersion: 5,
          ...persistent,
        });
        client.on('message', (_topic, payload) => received.get(device)?.push(payload.toString()));
        await client.subscribeAsync(`devices/${device}/cmd`, { qos: 1 });
        return client;
      }),
    );
    const producer = await connectedProducer();
    // both bridges know both sessions once a first command reaches each device
    await waitFor(
      async () => {
        await producer.send({
          topic: commandsTopic,
          messages: devices.map((device) => ({ key: device, value: 'hello' })),
        });
        return devices.every((device) => received.get(device)?.includes('hello'));
      },
      { what: 'a first command on each bridge', intervalMs: 500 },
    );
    for (const list of received.values()) list.length = 0;
    for (let index = 0; index < 50; index++) {
      await producer.send({
        topic: commandsTopic,
        messages: devices.map((device) => ({ key: device, value: `cmd-${index}` })),
      });
    }
    await waitFor(
      () =>
        devices.every(
          (device) => (received.get(device) ?? []).filter((v) => v.startsWith('cmd-')).length >= 50,
        ),
      { what: '50 commands per device' },
    );
    for (const device of devices) {
      const commands = (received.get(device) ?? []).filter((value) => value.startsWith('cmd-'));
      expect(commands).toEqual(Array.from({ length: 50 }, (_, index) => `cmd-${index}`));
    }
    await producer.disconnect();
    for (const client of clients) await client.endAsync();
  });
});

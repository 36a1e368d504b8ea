/**
 * Sessions kept in Kafka (sessions.store kafka, issue 13): a persistent session outlives a
 * SIGTERM restart and a SIGKILL of its bridge process — subscriptions with their options and
 * identifiers, queued messages in order, in-flight QoS 1/2 sent again with DUP and the same
 * packet ids, QoS 2 packet ids received (a retransmission after the restart is produced once),
 * wills kept through a rolling restart.
 */
import type { IPublishPacket } from 'mqtt-packet';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../scripts/kafka/local-kafka.js';
import { BridgeProcess, stopAllBridgeProcesses } from '../support/bridge-process.js';
import { connectClient } from '../support/bridge.js';
import {
  connectedProducer,
  createTopic,
  kafkaBrokers,
  readRecords,
  uniqueId,
} from '../support/kafka-helpers.js';
import { RawClient } from '../support/raw-client.js';
import { waitFor } from '../support/wait-for.js';

afterAll(async () => {
  await stopAllBridgeProcesses();
});

/** Environment of bridges sharing session topics of their own. */
function sessionTopics(id: string): Record<string, string> {
  return {
    BRIDGE_SESSIONS_STORE: 'kafka',
    BRIDGE_SESSIONS_TOPIC: `sessions-${id}`,
    BRIDGE_SESSIONS_MESSAGES_TOPIC: `session-messages-${id}`,
    BRIDGE_SESSIONS_PARTITIONS: '3',
    BRIDGE_AUTH_ALLOW_ANONYMOUS: 'true',
  };
}

/** A bridge with its own session topics, on a fixed port so that it restarts on the same one. */
async function fleetOfOne(mappings = 'uplink: []\n', env: Record<string, string> = {}) {
  const id = uniqueId();
  const port = await findFreePort();
  const options = {
    brokers: kafkaBrokers().join(','),
    mappings,
    mqttPort: port,
    env: { ...sessionTopics(id), BRIDGE_INSTANCE_ID: `bridge-${id}`, ...env },
  };
  return { port, start: () => BridgeProcess.start(options) };
}

const publishPacket = (topic: string, payload: string, qos: 1 | 2, messageId: number) => ({
  cmd: 'publish' as const,
  topic,
  payload: Buffer.from(payload),
  qos,
  dup: false,
  retain: false,
  messageId,
});

const persistent = { clean: false, properties: { sessionExpiryInterval: 3600 } };

describe('sessions in Kafka: restarts and crashes', () => {
  it('SIGTERM restart: subscriptions (options, identifiers) and queued QoS 1/2 messages survive, in order', async () => {
    const fleet = await fleetOfOne();
    let bridge = await fleet.start();
    const subscriber = await connectClient(fleet.port, {
      clientId: `sub-${uniqueId()}`,
      protocolVersion: 5,
      ...persistent,
    });
    await subscriber.subscribeAsync('t/#', { qos: 1, properties: { subscriptionIdentifier: 7 } });
    await subscriber.subscribeAsync('q2/#', { qos: 2 });
    const clientId = subscriber.options.clientId ?? '';
    await subscriber.endAsync();
    // a session that expires 1 s after its client left: gone after the restart
    const shortLived = {
      clientId: `short-${uniqueId()}`,
      protocolVersion: 5 as const,
      clean: false,
    };
    const brief = await connectClient(fleet.port, {
      ...shortLived,
      properties: { sessionExpiryInterval: 1 },
    });
    await brief.subscribeAsync('t/#', { qos: 1 });
    await brief.endAsync();

    const publisher = await connectClient(fleet.port, { clientId: `pub-${uniqueId()}` });
    for (let index = 0; index < 10; index++) {
      await publisher.publishAsync('t/x', `one-${index}`, { qos: 1 });
    }
    for (let index = 0; index < 3; index++) {
      await publisher.publishAsync('q2/y', `two-${index}`, { qos: 2 });
    }
    await publisher.endAsync();

    bridge.signal('SIGTERM');
    expect((await bridge.exited).code).toBe(0);
    bridge = await fleet.start();
    // expiry counted from the disconnect, across the restart: the 1 s session
    // is gone at once (counted from the restart, it would last another second)
    const expired = await RawClient.connect(fleet.port);
    const expiredConnack = await expired.handshake({
      ...shortLived,
      properties: { sessionExpiryInterval: 1 },
    });
    expect(expiredConnack.sessionPresent).toBe(false);
    const received: IPublishPacket[] = [];
    const back = await connectClient(
      fleet.port,
      { clientId, protocolVersion: 5, ...persistent },
      (client) => {
        client.on('message', (_topic, _payload, packet) => received.push(packet));
      },
    );
    await waitFor(() => received.length >= 13, { what: '13 queued messages' });
    const ofTopic = (topic: string) =>
      received
        .filter((packet) => packet.topic === topic)
        .map((packet) => packet.payload.toString());
    expect(ofTopic('t/x')).toEqual(Array.from({ length: 10 }, (_, index) => `one-${index}`));
    expect(ofTopic('q2/y')).toEqual(['two-0', 'two-1', 'two-2']);
    expect(
      received.find((packet) => packet.topic === 't/x')?.properties?.subscriptionIdentifier,
    ).toBe(7);
    expect(received.find((packet) => packet.topic === 'q2/y')?.qos).toBe(2);
    // the subscriptions themselves came back: a new publish arrives
    const later = await connectClient(fleet.port, { clientId: `pub2-${uniqueId()}` });
    await later.publishAsync('t/z', 'after', { qos: 1 });
    await waitFor(() => received.some((packet) => packet.topic === 't/z'));
    await back.endAsync();
    await later.endAsync();
  });

  it('SIGKILL: in-flight QoS 1 goes again with DUP and the same packet ids; a QoS 2 retransmission is produced once', async () => {
    const uplinkTopic = await createTopic('sessions-uplink', 1);
    const fleet = await fleetOfOne(
      `uplink:\n  - name: all\n    from: 'in/#'\n    to: { topic: ${uplinkTopic} }\n`,
    );
    let bridge = await fleet.start();
    const subscriberId = `raw-sub-${uniqueId()}`;
    const subscriber = await RawClient.connect(fleet.port);
    await subscriber.handshake({ clientId: subscriberId, protocolVersion: 5, ...persistent });
    expect((await subscriber.subscribe('in/#', 1)).granted).toEqual([1]);

    // a publisher with a session of its own: its QoS 2 publish is stored, PUBREC comes, no PUBREL yet
    const publisherId = `raw-pub-${uniqueId()}`;
    const publisher = await RawClient.connect(fleet.port);
    await publisher.handshake({ clientId: publisherId, protocolVersion: 5, ...persistent });
    for (let index = 1; index <= 5; index++) {
      publisher.send(publishPacket('in/one', `m-${index}`, 1, index), 5);
      await publisher.next('puback');
    }
    publisher.send(publishPacket('in/two', 'exactly-once', 2, 42), 5);
    expect((await publisher.next('pubrec')).messageId).toBe(42);

    // the subscriber got the six messages and acknowledges none of them
    const firstIds: number[] = [];
    for (let index = 0; index < 6; index++) {
      const packet = await subscriber.next('publish');
      firstIds.push(packet.messageId ?? 0);
    }

    bridge.signal('SIGKILL');
    await bridge.exited;
    bridge = await fleet.start();

    const again = await RawClient.connect(fleet.port);
    const connack = await again.handshake({
      clientId: subscriberId,
      protocolVersion: 5,
      ...persistent,
    });
    expect(connack.sessionPresent).toBe(true);
    const resent: IPublishPacket[] = [];
    for (let index = 0; index < 6; index++) resent.push(await again.next('publish'));
    expect(resent.map((packet) => packet.payload.toString())).toEqual([
      'm-1',
      'm-2',
      'm-3',
      'm-4',
      'm-5',
      'exactly-once',
    ]);
    expect(resent.every((packet) => packet.dup)).toBe(true);
    expect(resent.map((packet) => packet.messageId)).toEqual(firstIds);

    // the publisher comes back and retransmits its QoS 2 publish: not produced again
    const publisherAgain = await RawClient.connect(fleet.port);
    const publisherConnack = await publisherAgain.handshake({
      clientId: publisherId,
      protocolVersion: 5,
      ...persistent,
    });
    expect(publisherConnack.sessionPresent).toBe(true);
    publisherAgain.send({ ...publishPacket('in/two', 'exactly-once', 2, 42), dup: true }, 5);
    expect((await publisherAgain.next('pubrec')).messageId).toBe(42);
    publisherAgain.send({ cmd: 'pubrel', messageId: 42 }, 5);
    expect((await publisherAgain.next('pubcomp')).reasonCode ?? 0).toBe(0);
    const records = await readRecords(uplinkTopic, 6);
    expect(records.filter((record) => record.value?.toString() === 'exactly-once')).toHaveLength(1);
    // nor delivered again beyond the one kept in flight for the subscriber
    for (const packet of resent) again.send({ cmd: 'puback', messageId: packet.messageId }, 5);
    publisherAgain.send(publishPacket('in/one', 'fresh', 1, 43), 5);
    expect((await again.next('publish')).payload.toString()).toBe('fresh');
  });

  it('a rolling restart keeps wills: a client back within restartGraceMs fires none, one that stays away fires once', async () => {
    // the grace covers the restart of the bridge process and the client's return
    const fleet = await fleetOfOne('uplink: []\n', { BRIDGE_SESSIONS_RESTART_GRACE_MS: '12000' });
    let bridge = await fleet.start();
    const willTopic = `wills/${uniqueId()}`;
    const withWill = (name: string) => ({
      clientId: `${name}-${uniqueId()}`,
      protocolVersion: 5 as const,
      ...persistent,
      will: {
        topic: `${willTopic}/${name}`,
        payload: Buffer.from(name),
        qos: 1 as const,
        retain: false,
      },
    });
    // the watcher has a session of its own: what is published while it is away waits for it
    const watcherOptions = {
      clientId: `watch-${uniqueId()}`,
      protocolVersion: 5 as const,
      ...persistent,
    };
    const watcher = await connectClient(fleet.port, watcherOptions);
    await watcher.subscribeAsync(`${willTopic}/#`, { qos: 1 });
    const returning = withWill('returning');
    const leaving = withWill('leaving');
    for (const options of [returning, leaving]) {
      const client = await connectClient(fleet.port, options);
      client.on('error', () => undefined);
    }
    watcher.on('error', () => undefined);

    bridge.signal('SIGTERM');
    await bridge.exited;
    bridge = await fleet.start();
    await connectClient(fleet.port, returning);
    const wills: string[] = [];
    const back = await connectClient(fleet.port, watcherOptions, (client) => {
      client.on('message', (_topic, payload) => wills.push(payload.toString()));
    });
    await waitFor(() => wills.length >= 1, {
      timeoutMs: 20_000,
      what: "the leaving client's will",
    });
    // both wills were due at the same time: a marker published after the first shows none other
    await back.publishAsync(`${willTopic}/marker`, 'marker', { qos: 1 });
    await waitFor(() => wills.includes('marker'));
    expect(wills).toEqual(['leaving', 'marker']);
  });

  it('a bridge killed: another adopts its sessions — the will goes out once, the device resumes there', async () => {
    const id = uniqueId();
    const start = (name: string) =>
      BridgeProcess.start({
        brokers: kafkaBrokers().join(','),
        mappings: 'uplink: []\n',
        env: {
          ...sessionTopics(id),
          BRIDGE_INSTANCE_ID: `${name}-${id}`,
          BRIDGE_INSTANCE_TIMEOUT_MS: '2000',
        },
      });
    const doomed = await start('doomed');
    const survivor = await start('survivor');
    const topic = `adopt/${id}`;
    const device = {
      clientId: `adopted-${id}`,
      protocolVersion: 5 as const,
      ...persistent,
      will: {
        topic: `${topic}/will`,
        payload: Buffer.from('gone'),
        qos: 1 as const,
        retain: false,
      },
    };
    const client = await connectClient(doomed.mqttPort, device);
    client.on('error', () => undefined);
    await client.subscribeAsync(`${topic}/cmd`, { qos: 1 });
    const watcher = await connectClient(survivor.mqttPort, { clientId: `watcher-${id}` });
    const wills: string[] = [];
    watcher.on('message', (received, payload) => {
      if (received === `${topic}/will`) wills.push(payload.toString());
    });
    await watcher.subscribeAsync(`${topic}/will`, { qos: 1 });

    doomed.signal('SIGKILL');
    await doomed.exited;
    // a command for the device while its bridge is dead waits in its session
    await watcher.publishAsync(`${topic}/cmd`, 'while-away', { qos: 1 });
    await waitFor(() => wills.length > 0, {
      timeoutMs: 15_000,
      what: "the will of the dead bridge's client",
    });
    const received: string[] = [];
    const back = await connectClient(survivor.mqttPort, device, (resumed) => {
      resumed.on('message', (_topic, payload) => received.push(payload.toString()));
    });
    await waitFor(() => received.includes('while-away'), {
      what: 'the command kept for the device',
    });
    // a marker after the resume: no second will came
    await watcher.publishAsync(`${topic}/will`, 'marker', { qos: 1 });
    await waitFor(() => wills.includes('marker'));
    expect(wills).toEqual(['gone', 'marker']);
    await back.endAsync();
    await watcher.endAsync();
  });

  it('slow subscribers that never acknowledge do not hold back downlink commands for others', async () => {
    const commands = await createTopic('slow-commands', 1);
    const fleet = await fleetOfOne(
      `uplink: []\ndownlink:\n  - name: commands\n    from: ${commands}\n    to: { topic: 'devices/{key}/cmd', qos: 1 }\n`,
      { BRIDGE_DOWNLINK_MAX_UNSETTLED: '20', BRIDGE_DOWNLINK_GROUP_ID: `slow-${uniqueId()}` },
    );
    await fleet.start();
    // two MQTT 3.1.1 clean-session subscribers to every device's commands that never PUBACK
    for (const name of ['slow-1', 'slow-2']) {
      const slow = await RawClient.connect(fleet.port);
      await slow.handshake({ clientId: `${name}-${uniqueId()}`, protocolVersion: 4 });
      expect((await slow.subscribe('devices/+/cmd', 1)).granted).toEqual([1]);
    }
    const device = `healthy-${uniqueId()}`;
    const received: string[] = [];
    const client = await connectClient(fleet.port, { clientId: device, protocolVersion: 5 });
    client.on('message', (_topic, payload) => received.push(payload.toString()));
    await client.subscribeAsync(`devices/${device}/cmd`, { qos: 1 });
    const producer = await connectedProducer();
    // ten times the downlink's budget of unsettled records
    const values = Array.from({ length: 200 }, (_, index) => `cmd-${index}`);
    await producer.send({
      topic: commands,
      messages: values.map((value) => ({ key: device, value })),
    });
    await waitFor(() => received.length >= 200, { what: '200 commands past the slow subscribers' });
    expect(received).toEqual(values);
    await producer.disconnect();
    await client.endAsync();
  });

  it('refuses to start on a sessions topic that is not compacted, saying what to change', async () => {
    const wrong = await createTopic('sessions-not-compacted', 1, {
      configEntries: [{ name: 'cleanup.policy', value: 'delete' }],
    });
    const fleet = await fleetOfOne('uplink: []\n', { BRIDGE_SESSIONS_TOPIC: wrong });
    await expect(fleet.start()).rejects.toThrow(
      new RegExp(`sessions topic "${wrong}" has cleanup.policy=delete; it needs compact`),
    );
  });
});

import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { collect, connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { RawClient } from '../support/raw-client.js';
import { waitFor } from '../support/wait-for.js';

let running: RunningBridge;
let port: number;

beforeAll(async () => {
  // No uplink rules: these tests are about the broker's own delivery.
  running = await startBridge('uplink: []\n');
  port = running.mqttPort;
});

afterAll(async () => {
  await running.stop();
});

let unique = 0;
const topicRoot = (): string => `t${Date.now().toString(36)}${unique++}`;

describe('publish and subscribe', () => {
  it('delivers between clients of different versions at min(publish QoS, subscription QoS)', async () => {
    const root = topicRoot();
    const v3 = await connectClient(port, { clientId: `${root}-v3` });
    const v5 = await connectClient(port, { clientId: `${root}-v5`, protocolVersion: 5 });
    const toV3 = collect(v3);
    const toV5 = collect(v5);
    await v3.subscribeAsync(`${root}/a`, { qos: 1 });
    await v5.subscribeAsync(`${root}/b`, { qos: 2 });
    await v5.publishAsync(`${root}/a`, 'five-to-three', { qos: 2 });
    await v3.publishAsync(`${root}/b`, 'three-to-five', { qos: 1 });
    await waitFor(() => toV3.length === 1 && toV5.length === 1);
    expect(toV3[0]).toMatchObject({
      topic: `${root}/a`,
      payload: 'five-to-three',
      packet: { qos: 1 },
    });
    expect(toV5[0]).toMatchObject({
      topic: `${root}/b`,
      payload: 'three-to-five',
      packet: { qos: 1 },
    });
  });

  it('matches + and # and keeps $-topics away from leading wildcards [MQTT-4.7.2-1]', async () => {
    const root = topicRoot();
    const client = await connectClient(port, { clientId: `${root}-wild` });
    const received = collect(client);
    await client.subscribeAsync([`${root}/+/temp`, `${root}/sensors/#`, '#'], { qos: 0 });
    await client.publishAsync('$SYS/not-for-hash', 'x', { qos: 0 });
    await client.publishAsync(`${root}/kitchen/temp`, 'plus', { qos: 1 });
    await client.publishAsync(`${root}/sensors`, 'hash-parent', { qos: 1 });
    await waitFor(() => received.length >= 2);
    await client.publishAsync(`${root}/done`, 'end', { qos: 1 });
    await waitFor(() => received.some((message) => message.payload === 'end'));
    expect(received.map((message) => message.payload).sort()).toEqual([
      'end',
      'hash-parent',
      'plus',
    ]);
  });

  it('sends one copy per client for overlapping subscriptions, with every identifier on MQTT 5 [MQTT-3.3.4-2]', async () => {
    const root = topicRoot();
    const client = await connectClient(port, { clientId: `${root}-overlap`, protocolVersion: 5 });
    const received = collect(client);
    await client.subscribeAsync(`${root}/+`, { qos: 0, properties: { subscriptionIdentifier: 7 } });
    await client.subscribeAsync(`${root}/#`, { qos: 1, properties: { subscriptionIdentifier: 9 } });
    const other = await connectClient(port, { clientId: `${root}-pub` });
    await other.publishAsync(`${root}/x`, 'once', { qos: 1 });
    await waitFor(() => received.length === 1);
    await other.publishAsync(`${root}/x`, 'twice', { qos: 1 });
    await waitFor(() => received.length === 2);
    expect(received[0]?.packet.qos).toBe(1);
    expect([received[0]?.packet.properties?.subscriptionIdentifier].flat().sort()).toEqual([7, 9]);
  });

  it('honours No Local: an MQTT 5 client does not get its own messages [MQTT-3.8.3-3]', async () => {
    const root = topicRoot();
    const client = await connectClient(port, { clientId: `${root}-nl`, protocolVersion: 5 });
    const received = collect(client);
    await client.subscribeAsync(`${root}/chat`, { qos: 1, nl: true });
    await client.subscribeAsync(`${root}/marker`, { qos: 1 });
    await client.publishAsync(`${root}/chat`, 'mine', { qos: 1 });
    await client.publishAsync(`${root}/marker`, 'marker', { qos: 1 });
    await waitFor(() => received.length === 1);
    expect(received[0]?.payload).toBe('marker');
  });

  it('answers UNSUBSCRIBE with a reason code per filter on MQTT 5 and stops delivery', async () => {
    const root = topicRoot();
    const client = await connectClient(port, { clientId: `${root}-unsub`, protocolVersion: 5 });
    const received = collect(client);
    await client.subscribeAsync(`${root}/a`, { qos: 0 });
    await client.unsubscribeAsync(`${root}/a`);
    await client.subscribeAsync(`${root}/marker`, { qos: 1 });
    await client.publishAsync(`${root}/a`, 'after-unsubscribe', { qos: 1 });
    await client.publishAsync(`${root}/marker`, 'marker', { qos: 1 });
    await waitFor(() => received.length === 1);
    expect(received[0]?.payload).toBe('marker');
  });

  it('gives UNSUBACK reason codes 0x00 and 0x11 (no subscription existed) on MQTT 5', async () => {
    const raw = await RawClient.connect(port);
    await raw.handshake({ clientId: 'unsub-codes', protocolVersion: 5 });
    await raw.subscribe('u/a', 0);
    raw.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['u/a', 'u/never'] }, 5);
    expect((await raw.next('unsuback')).granted).toEqual([0x00, 0x11]);
  });

  it('refuses an invalid filter with 0x80 on 3.1.1 and 0x8F on MQTT 5', async () => {
    const v3 = await RawClient.connect(port);
    await v3.handshake({ clientId: 'bad-filter-3', protocolVersion: 4 });
    v3.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [
        { topic: 'a/#/b', qos: 0 },
        { topic: 'ok/+', qos: 1 },
      ],
    });
    expect((await v3.next('suback')).granted).toEqual([0x80, 1]);
    const v5 = await RawClient.connect(port);
    await v5.handshake({ clientId: 'bad-filter-5', protocolVersion: 5 });
    v5.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a+', qos: 0 }] }, 5);
    expect((await v5.next('suback')).granted).toEqual([0x8f]);
  });
});

describe('retained messages', () => {
  it('stores, replaces and deletes retained messages; new subscribers get them with RETAIN set', async () => {
    const root = topicRoot();
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    await publisher.publishAsync(`${root}/state`, 'first', { qos: 1, retain: true });
    await publisher.publishAsync(`${root}/state`, 'second', { qos: 1, retain: true });
    await publisher.publishAsync(`${root}/gone`, 'soon deleted', { qos: 1, retain: true });
    await publisher.publishAsync(`${root}/gone`, '', { qos: 1, retain: true }); // [MQTT-3.3.1-10]

    const subscriber = await connectClient(port, { clientId: `${root}-sub` });
    const received = collect(subscriber);
    await subscriber.subscribeAsync(`${root}/#`, { qos: 1 });
    await waitFor(() => received.length >= 1);
    await publisher.publishAsync(`${root}/live`, 'live', { qos: 1, retain: false });
    await waitFor(() => received.some((message) => message.payload === 'live'));
    expect(received.map((message) => [message.payload, message.packet.retain])).toEqual([
      ['second', true],
      ['live', false],
    ]);
  });

  it('honours Retain Handling 1 (only on a new subscription) and 2 (never)', async () => {
    const root = topicRoot();
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    await publisher.publishAsync(`${root}/r`, 'kept', { qos: 1, retain: true });
    const client = await connectClient(port, { clientId: `${root}-rh`, protocolVersion: 5 });
    const received = collect(client);
    await client.subscribeAsync(`${root}/r`, { qos: 1, rh: 1 });
    await waitFor(() => received.length === 1);
    await client.subscribeAsync(`${root}/r`, { qos: 1, rh: 1 }); // exists already: nothing
    await client.subscribeAsync(`${root}/+`, { qos: 1, rh: 2 }); // never
    await client.subscribeAsync(`${root}/marker`, { qos: 1 });
    await publisher.publishAsync(`${root}/marker`, 'marker', { qos: 1 });
    await waitFor(() => received.some((message) => message.payload === 'marker'));
    expect(received.map((message) => message.payload)).toEqual(['kept', 'marker']);
  });

  it('does not deliver a retained message whose expiry passed', async () => {
    const root = topicRoot();
    const publisher = await connectClient(port, { clientId: `${root}-pub`, protocolVersion: 5 });
    await publisher.publishAsync(`${root}/short`, 'short-lived', {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 1 },
    });
    await publisher.publishAsync(`${root}/long`, 'long-lived', {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 60 },
    });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const client = await connectClient(port, { clientId: `${root}-sub`, protocolVersion: 5 });
    const received = collect(client);
    await client.subscribeAsync(`${root}/+`, { qos: 1 });
    await waitFor(() => received.length === 1);
    expect(received[0]?.payload).toBe('long-lived');
    // [MQTT-3.3.2-6] the interval sent is what remains of it
    expect(received[0]?.packet.properties?.messageExpiryInterval).toBeLessThanOrEqual(59);
  });
});

describe('retained messages in bulk', () => {
  it('gives a subscriber every QoS 0 retained message at once, more bytes than mqtt.maxWriteBuffer', async () => {
    // a bridge whose write buffer a few retained messages fill
    const small = await startBridge('uplink: []\n', { mqtt: { maxWriteBuffer: 64 * 1024 } });
    onTestFinished(() => small.stop());
    const root = topicRoot();
    const publisher = await connectClient(small.mqttPort, { clientId: `${root}-pub` });
    const payload = Buffer.alloc(4 * 1024, 'r');
    for (let index = 0; index < 100; index++) {
      await publisher.publishAsync(`${root}/${index}`, payload, { qos: 1, retain: true });
    }
    const client = await connectClient(small.mqttPort, { clientId: `${root}-sub` });
    const received = collect(client);
    // 400 KiB written in one go: a client that reads them all in time loses none
    await client.subscribeAsync(`${root}/+`, { qos: 0 });
    await waitFor(() => received.length === 100);
    expect(await small.metric('bridge_mqtt_messages_dropped_total')).toBe(0);
  });
});

describe('sessions', () => {
  it('queues QoS 1 messages for an offline 3.1.1 persistent session and delivers them in order', async () => {
    const root = topicRoot();
    const clientId = `${root}-persistent`;
    const first = await connectClient(port, { clientId, clean: false });
    await first.subscribeAsync(`${root}/cmd`, { qos: 1 });
    await first.endAsync();

    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    for (let index = 0; index < 5; index++) {
      await publisher.publishAsync(`${root}/cmd`, `c${index}`, { qos: 1 });
    }
    await publisher.publishAsync(`${root}/cmd`, 'qos0-dropped', { qos: 0 });

    const raw = await RawClient.connect(port);
    const connack = await raw.handshake({ clientId, protocolVersion: 4, clean: false });
    expect(connack.sessionPresent).toBe(true);
    const payloads: string[] = [];
    for (let index = 0; index < 5; index++) {
      const publish = await raw.next('publish');
      payloads.push(publish.payload.toString());
      raw.send({ cmd: 'puback', messageId: publish.messageId ?? 0 });
    }
    expect(payloads).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
  });

  it('ends a clean session at disconnect: no session present, no queued messages', async () => {
    const root = topicRoot();
    const clientId = `${root}-clean`;
    const first = await connectClient(port, { clientId, clean: true });
    await first.subscribeAsync(`${root}/x`, { qos: 1 });
    await first.endAsync();
    const raw = await RawClient.connect(port);
    const connack = await raw.handshake({ clientId, protocolVersion: 4, clean: true });
    expect(connack.sessionPresent).toBe(false);
  });

  it('keeps an MQTT 5 session for its Session Expiry Interval and resends unacknowledged messages with DUP', async () => {
    const root = topicRoot();
    const clientId = `${root}-v5`;
    const raw = await RawClient.connect(port);
    await raw.handshake({
      protocolVersion: 5,
      clientId,
      properties: { sessionExpiryInterval: 60 },
    });
    await raw.subscribe(`${root}/q`, 1);
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    await publisher.publishAsync(`${root}/q`, 'unacked', { qos: 1 });
    const first = await raw.next('publish');
    expect(first.dup).toBe(false);
    raw.destroy(); // no PUBACK

    const again = await RawClient.connect(port);
    expect(
      (
        await again.handshake({
          protocolVersion: 5,
          clientId,
          clean: false,
          properties: { sessionExpiryInterval: 60 },
        })
      ).sessionPresent,
    ).toBe(true);
    const resent = await again.next('publish');
    expect(resent).toMatchObject({ dup: true, messageId: first.messageId });
    expect(resent.payload.toString()).toBe('unacked');
  });

  it('does not send more QoS 1 messages than the client’s Receive Maximum [MQTT-3.3.4-7]', async () => {
    const root = topicRoot();
    const raw = await RawClient.connect(port);
    await raw.handshake({
      protocolVersion: 5,
      clientId: `${root}-rm`,
      properties: { receiveMaximum: 1 },
    });
    await raw.subscribe(`${root}/rm`, 1);
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    for (const payload of ['one', 'two', 'three'])
      await publisher.publishAsync(`${root}/rm`, payload, { qos: 1 });
    const first = await raw.next('publish');
    expect(first.payload.toString()).toBe('one');
    // everything is published; had the bridge ignored Receive Maximum, 'two' would be here by now
    await publisher.publishAsync(`${root}/other`, 'sync', { qos: 1 });
    expect(raw.packets.filter((packet) => packet.cmd === 'publish')).toHaveLength(0);
    raw.send({ cmd: 'puback', messageId: first.messageId ?? 0 }, 5);
    expect((await raw.next('publish')).payload.toString()).toBe('two');
  });

  it('resends unacknowledged messages on resume only within the new, smaller Receive Maximum', async () => {
    const root = topicRoot();
    const clientId = `${root}-shrink`;
    const session = { protocolVersion: 5 as const, clientId, clean: false };
    const raw = await RawClient.connect(port);
    await raw.handshake({ ...session, clean: true, properties: { sessionExpiryInterval: 60 } });
    await raw.subscribe(`${root}/s`, 1);
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    for (const payload of ['one', 'two', 'three'])
      await publisher.publishAsync(`${root}/s`, payload, { qos: 1 });
    await waitFor(() => raw.packets.filter((packet) => packet.cmd === 'publish').length === 3);
    raw.destroy(); // none acknowledged

    const again = await RawClient.connect(port);
    await again.handshake({
      ...session,
      properties: { sessionExpiryInterval: 60, receiveMaximum: 1 },
    });
    const first = await again.next('publish');
    expect(first).toMatchObject({ dup: true });
    expect(first.payload.toString()).toBe('one');
    // had the bridge resent all three, the others would be here before this round trip ends
    await publisher.publishAsync(`${root}/other`, 'sync', { qos: 1 });
    expect(again.packets.filter((packet) => packet.cmd === 'publish')).toHaveLength(0);
    again.send({ cmd: 'puback', messageId: first.messageId ?? 0 }, 5);
    const second = await again.next('publish');
    expect(second).toMatchObject({ dup: true });
    expect(second.payload.toString()).toBe('two');
  });

  it('does not deliver queued messages whose expiry passed while the client was away', async () => {
    const root = topicRoot();
    const clientId = `${root}-exp`;
    const first = await connectClient(port, {
      clientId,
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    });
    await first.subscribeAsync(`${root}/e`, { qos: 1 });
    await first.endAsync();
    const publisher = await connectClient(port, { clientId: `${root}-pub`, protocolVersion: 5 });
    await publisher.publishAsync(`${root}/e`, 'expires', {
      qos: 1,
      properties: { messageExpiryInterval: 1 },
    });
    await publisher.publishAsync(`${root}/e`, 'stays', { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    // a raw client: MQTT.js could emit the queued messages before a listener is attached
    const back = await RawClient.connect(port);
    expect(
      (
        await back.handshake({
          protocolVersion: 5,
          clientId,
          clean: false,
          properties: { sessionExpiryInterval: 60 },
        })
      ).sessionPresent,
    ).toBe(true);
    const publish = await back.next('publish');
    expect(publish.payload.toString()).toBe('stays');
    back.send({ cmd: 'puback', messageId: publish.messageId ?? 0 }, 5);
    await publisher.publishAsync(`${root}/e`, 'marker', { qos: 1 });
    expect((await back.next('publish')).payload.toString()).toBe('marker');
  });
});

describe('shared subscriptions', () => {
  it('spreads $share/{group}/{filter} messages round-robin over the group, and $queue/ works on 3.1.1', async () => {
    const root = topicRoot();
    const members = await Promise.all(
      ['a', 'b'].map((name) =>
        connectClient(port, { clientId: `${root}-${name}`, protocolVersion: 5 }),
      ),
    );
    const queueMember = await connectClient(port, { clientId: `${root}-q` });
    const received = members.map(collect);
    const queued = collect(queueMember);
    await Promise.all(
      members.map((member) => member.subscribeAsync(`$share/workers/${root}/jobs`, { qos: 1 })),
    );
    await queueMember.subscribeAsync(`$queue/${root}/jobs`, { qos: 1 });
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    for (let index = 0; index < 6; index++)
      await publisher.publishAsync(`${root}/jobs`, `j${index}`, { qos: 1 });
    await waitFor(
      () => (received[0]?.length ?? 0) + (received[1]?.length ?? 0) === 6 && queued.length === 6,
    );
    // each group gets every message once; within the group, members take turns
    expect(received[0]).toHaveLength(3);
    expect(received[1]).toHaveLength(3);
    expect(queued.map((message) => message.payload)).toEqual(['j0', 'j1', 'j2', 'j3', 'j4', 'j5']);
  });

  it('hands a member’s unreceived messages to another member when its session ends [MQTT-4.8.2-4]', async () => {
    const root = topicRoot();
    const filter = `$share/g/${root}/jobs`;
    const leaving = await RawClient.connect(port);
    await leaving.handshake({
      protocolVersion: 5,
      clientId: `${root}-leaving`,
      properties: { receiveMaximum: 1 },
    });
    await leaving.subscribe(filter, 1);
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    // The only member: it takes both, one in flight (never acknowledged) and one queued.
    await publisher.publishAsync(`${root}/jobs`, 'first', { qos: 1 });
    await publisher.publishAsync(`${root}/jobs`, 'second', { qos: 1 });
    await leaving.next('publish');

    const staying = await connectClient(port, { clientId: `${root}-staying`, protocolVersion: 5 });
    const received = collect(staying);
    await staying.subscribeAsync(filter, { qos: 1 });
    leaving.destroy(); // session expiry 0: the session ends with the connection
    await waitFor(() => received.length === 2);
    expect(received.map((message) => message.payload)).toEqual(['first', 'second']);
  });
});

describe('will messages', () => {
  it('delays the will and drops it when the client comes back in time [MQTT-3.1.3-9]', async () => {
    const root = topicRoot();
    const watcher = await connectClient(port, { clientId: `${root}-watch` });
    const received = collect(watcher);
    await watcher.subscribeAsync(`${root}/will/+`, { qos: 1 });
    const options = {
      protocolVersion: 5 as const,
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    };
    const comesBack = await connectClient(port, {
      ...options,
      clientId: `${root}-back`,
      will: {
        topic: `${root}/will/back`,
        payload: Buffer.from('back'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 1 },
      },
    });
    const staysAway = await connectClient(port, {
      ...options,
      clientId: `${root}-away`,
      will: {
        topic: `${root}/will/away`,
        payload: Buffer.from('away'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 1 },
      },
    });
    comesBack.stream.destroy();
    staysAway.stream.destroy();
    await connectClient(port, { ...options, clientId: `${root}-back` });
    await waitFor(() => received.length === 1, { timeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(received.map((message) => message.payload)).toEqual(['away']);
  });
});

describe('outbound flow', () => {
  it('runs the full QoS 2 exchange to a subscriber: PUBLISH, PUBREC, PUBREL, PUBCOMP', async () => {
    const root = topicRoot();
    const raw = await RawClient.connect(port);
    await raw.handshake({ clientId: `${root}-q2`, protocolVersion: 4 });
    await raw.subscribe(`${root}/q2`, 2);
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    await publisher.publishAsync(`${root}/q2`, 'exactly once', { qos: 2 });
    const publish = await raw.next('publish');
    expect(publish.qos).toBe(2);
    raw.send({ cmd: 'pubrec', messageId: publish.messageId ?? 0 });
    expect((await raw.next('pubrel')).messageId).toBe(publish.messageId);
    raw.send({ cmd: 'pubcomp', messageId: publish.messageId ?? 0 });
    // the packet id is free again: the next message may reuse the exchange
    await publisher.publishAsync(`${root}/q2`, 'next', { qos: 2 });
    expect((await raw.next('publish')).payload.toString()).toBe('next');
  });

  it('uses topic aliases towards an MQTT 5 client that allows them', async () => {
    const root = topicRoot();
    const raw = await RawClient.connect(port);
    await raw.handshake({
      protocolVersion: 5,
      clientId: `${root}-alias`,
      properties: { topicAliasMaximum: 5 },
    });
    await raw.subscribe(`${root}/a`, 0);
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    await publisher.publishAsync(`${root}/a`, 'first', { qos: 1 });
    await publisher.publishAsync(`${root}/a`, 'second', { qos: 1 });
    const first = await raw.next('publish');
    const second = await raw.next('publish');
    expect(first).toMatchObject({ topic: `${root}/a`, properties: { topicAlias: 1 } });
    expect(second).toMatchObject({ topic: '', properties: { topicAlias: 1 } });
  });

  it('drops a message larger than the client’s Maximum Packet Size [MQTT-3.1.2-25]', async () => {
    const root = topicRoot();
    const raw = await RawClient.connect(port);
    await raw.handshake({
      protocolVersion: 5,
      clientId: `${root}-small`,
      properties: { maximumPacketSize: 200 },
    });
    await raw.subscribe(`${root}/s`, 1);
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    await publisher.publishAsync(`${root}/s`, Buffer.alloc(500), { qos: 1 });
    await publisher.publishAsync(`${root}/s`, 'fits', { qos: 1 });
    const publish = await raw.next('publish');
    expect(publish.payload.toString()).toBe('fits');
  });

  it('delays $delay/{seconds}/{topic} publishes and then delivers them to {topic}', async () => {
    const root = topicRoot();
    const subscriber = await connectClient(port, { clientId: `${root}-sub` });
    const received = collect(subscriber);
    await subscriber.subscribeAsync(`${root}/later`, { qos: 1 });
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    const sent = Date.now();
    await publisher.publishAsync(`$delay/1/${root}/later`, 'delayed', { qos: 1 });
    await waitFor(() => received.length === 1, { timeoutMs: 5000 });
    expect(Date.now() - sent).toBeGreaterThanOrEqual(900);
    expect(received[0]).toMatchObject({ topic: `${root}/later`, payload: 'delayed' });
  });

  it('bounds $delay: beyond mqtt.maxDelayedMessages, MQTT 5 gets 0x97 and the refusal is counted', async () => {
    const small = await startBridge('uplink: []\n', { mqtt: { maxDelayedMessages: 1 } });
    onTestFinished(() => small.stop());
    const raw = await RawClient.connect(small.mqttPort);
    await raw.handshake({ clientId: 'delayer', protocolVersion: 5 });
    for (const messageId of [1, 2]) {
      raw.send(
        {
          cmd: 'publish',
          topic: '$delay/600/later',
          payload: Buffer.from('x'),
          qos: 1,
          dup: false,
          retain: false,
          messageId,
        },
        5,
      );
    }
    expect((await raw.next('puback')).reasonCode ?? 0).toBe(0);
    expect((await raw.next('puback')).reasonCode).toBe(0x97);
    expect(await small.metric('bridge_mqtt_delayed_refused_total')).toBe(1);
    expect(await small.metric('bridge_mqtt_delayed_messages')).toBe(1);
  });

  it('talks MQTT 3.1 (MQIsdp) with 3.1.1 and 5 clients', async () => {
    const root = topicRoot();
    const old = await connectClient(port, {
      clientId: `${root}-31`,
      protocolVersion: 3,
      protocolId: 'MQIsdp',
    });
    const received = collect(old);
    await old.subscribeAsync(`${root}/legacy`, { qos: 1 });
    const modern = await connectClient(port, { clientId: `${root}-5`, protocolVersion: 5 });
    await modern.publishAsync(`${root}/legacy`, 'hello 3.1', { qos: 1 });
    await waitFor(() => received.length === 1);
    expect(received[0]?.payload).toBe('hello 3.1');
  });
});

describe('MQTT 5 properties end to end', () => {
  it('carries payload format, content type, response topic, correlation data and user properties in order', async () => {
    const root = topicRoot();
    const subscriber = await connectClient(port, { clientId: `${root}-sub`, protocolVersion: 5 });
    const received = collect(subscriber);
    await subscriber.subscribeAsync(`${root}/req`, { qos: 1 });
    const publisher = await connectClient(port, { clientId: `${root}-pub`, protocolVersion: 5 });
    await publisher.publishAsync(`${root}/req`, '{"on":true}', {
      qos: 1,
      properties: {
        payloadFormatIndicator: true,
        contentType: 'application/json',
        responseTopic: `${root}/resp`,
        correlationData: Buffer.from('corr-1'),
        userProperties: { b: '2', a: ['1', '3'] },
        messageExpiryInterval: 30,
      },
    });
    await waitFor(() => received.length === 1);
    const properties = received[0]?.packet.properties;
    expect(properties).toMatchObject({
      payloadFormatIndicator: true,
      contentType: 'application/json',
      responseTopic: `${root}/resp`,
      userProperties: { b: '2', a: ['1', '3'] },
    });
    expect(Object.keys(properties?.userProperties ?? {})).toEqual(['b', 'a']);
    expect(properties?.correlationData?.toString()).toBe('corr-1');
    expect(properties?.messageExpiryInterval).toBeLessThanOrEqual(30);
  });

  it('gives Response Information to a client that requests it', async () => {
    const raw = await RawClient.connect(port);
    expect(
      (
        await raw.handshake({
          protocolVersion: 5,
          clientId: 'asks-response-info',
          properties: { requestResponseInformation: true },
        })
      ).properties?.responseInformation,
    ).toBe('responses/asks-response-info');
  });

  it('leaves reason strings out for a client that asked for no problem information [MQTT-3.1.2-29]', async () => {
    for (const requestProblemInformation of [true, false]) {
      const raw = await RawClient.connect(port);
      await raw.handshake({
        protocolVersion: 5,
        clientId: `problem-info-${requestProblemInformation}`,
        properties: { requestProblemInformation },
      });
      // not $delay/{seconds}/{topic}: refused with 0x90
      raw.send(
        {
          cmd: 'publish',
          topic: '$delay/soon/x',
          payload: Buffer.from('x'),
          qos: 1,
          messageId: 1,
          dup: false,
          retain: false,
        },
        5,
      );
      const puback = await raw.next('puback');
      expect(puback.reasonCode).toBe(0x90);
      expect(puback.properties?.reasonString !== undefined).toBe(requestProblemInformation);
    }
  });
});

describe('more subscription behaviour', () => {
  it('sets RETAIN on live messages only for Retain As Published subscriptions', async () => {
    const root = topicRoot();
    const client = await connectClient(port, { clientId: `${root}-rap`, protocolVersion: 5 });
    const received = collect(client);
    await client.subscribeAsync(`${root}/kept`, { qos: 1, rap: true });
    await client.subscribeAsync(`${root}/plain`, { qos: 1, rap: false });
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    await publisher.publishAsync(`${root}/kept`, 'a', { qos: 1, retain: true });
    await publisher.publishAsync(`${root}/plain`, 'b', { qos: 1, retain: true });
    await waitFor(() => received.length === 2);
    expect(received.map((message) => [message.payload, message.packet.retain])).toEqual([
      ['a', true],
      ['b', false],
    ]);
  });

  it('lets 3.1.1 devices join $share groups too', async () => {
    const root = topicRoot();
    const members = await Promise.all(
      ['a', 'b'].map((name) => connectClient(port, { clientId: `${root}-${name}` })),
    );
    const received = members.map(collect);
    await Promise.all(
      members.map((member) => member.subscribeAsync(`$share/g/${root}/w`, { qos: 0 })),
    );
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    for (let index = 0; index < 4; index++)
      await publisher.publishAsync(`${root}/w`, `${index}`, { qos: 1 });
    await waitFor(() => (received[0]?.length ?? 0) + (received[1]?.length ?? 0) === 4);
    expect(received.map((list) => list.length)).toEqual([2, 2]);
  });

  it('drops and counts messages beyond a session’s queue limit', async () => {
    const bridge = await startBridge('uplink: []\n', { mqtt: { maxQueuedMessages: 2 } });
    try {
      const clientId = 'small-queue';
      const first = await connectClient(bridge.mqttPort, { clientId, clean: false });
      await first.subscribeAsync('q/x', { qos: 1 });
      await first.endAsync();
      const publisher = await connectClient(bridge.mqttPort, { clientId: 'queue-filler' });
      for (const payload of ['1', '2', '3', '4'])
        await publisher.publishAsync('q/x', payload, { qos: 1 });
      expect(await bridge.metric('bridge_mqtt_messages_dropped_total')).toBe(2);
      const raw = await RawClient.connect(bridge.mqttPort);
      await raw.handshake({ clientId, protocolVersion: 4, clean: false });
      const payloads = [];
      for (let index = 0; index < 2; index++) {
        const publish = await raw.next('publish');
        payloads.push(publish.payload.toString());
        raw.send({ cmd: 'puback', messageId: publish.messageId ?? 0 });
      }
      expect(payloads).toEqual(['1', '2']);
    } finally {
      await bridge.stop();
    }
  });

  it('publishes the will of a taken-over connection, with its properties', async () => {
    const root = topicRoot();
    const watcher = await connectClient(port, { clientId: `${root}-watch`, protocolVersion: 5 });
    const received = collect(watcher);
    await watcher.subscribeAsync(`${root}/will`, { qos: 1 });
    await connectClient(port, {
      clientId: `${root}-dup`,
      protocolVersion: 5,
      will: {
        topic: `${root}/will`,
        payload: Buffer.from('taken over'),
        qos: 1,
        retain: false,
        properties: { contentType: 'text/plain', userProperties: { why: 'takeover' } },
      },
    });
    await connectClient(port, { clientId: `${root}-dup`, protocolVersion: 5 });
    await waitFor(() => received.length === 1);
    expect(received[0]).toMatchObject({
      payload: 'taken over',
      packet: { properties: { contentType: 'text/plain', userProperties: { why: 'takeover' } } },
    });
  });
});

describe('session expiry', () => {
  it('caps the Session Expiry Interval, tells the client, and ends the session when it runs out', async () => {
    const bridge = await startBridge('uplink: []\n', { mqtt: { maxSessionExpiry: 1 } });
    try {
      const connect = {
        protocolVersion: 5 as const,
        clientId: 'capped',
        clean: false,
        properties: { sessionExpiryInterval: 3600 },
      };
      const first = await RawClient.connect(bridge.mqttPort);
      expect((await first.handshake(connect)).properties?.sessionExpiryInterval).toBe(1);
      first.send({ cmd: 'disconnect', reasonCode: 0 }, 5);
      await first.waitClosed();
      const soon = await RawClient.connect(bridge.mqttPort);
      expect((await soon.handshake(connect)).sessionPresent).toBe(true);
      soon.send({ cmd: 'disconnect', reasonCode: 0 }, 5);
      await soon.waitClosed();
      await new Promise((resolve) => setTimeout(resolve, 1300));
      const late = await RawClient.connect(bridge.mqttPort);
      expect((await late.handshake(connect)).sessionPresent).toBe(false);
    } finally {
      await bridge.stop();
    }
  });

  it('refuses a DISCONNECT that sets a Session Expiry Interval after CONNECT gave 0 [MQTT-3.14.2-2]', async () => {
    const raw = await RawClient.connect(port);
    await raw.handshake({ clientId: 'late-expiry', protocolVersion: 5 });
    raw.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 60 } }, 5);
    expect((await raw.next('disconnect')).reasonCode).toBe(0x82);
  });
});

describe('refused SUBSCRIBE and UNSUBSCRIBE', () => {
  it('applies none of a SUBSCRIBE refused for No Local on a shared subscription [MQTT-3.8.3-4]', async () => {
    const root = topicRoot();
    const connect = {
      protocolVersion: 5 as const,
      clientId: `${root}-half`,
      clean: false,
      keepalive: 0,
      properties: { sessionExpiryInterval: 60 },
    };
    const raw = await RawClient.connect(port);
    await raw.handshake(connect);
    raw.send(
      {
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [
          { topic: `${root}/fine`, qos: 1 },
          { topic: `$share/g/${root}/x`, qos: 1, nl: true },
        ],
      },
      5,
    );
    expect((await raw.next('disconnect')).reasonCode).toBe(0x82);
    const again = await RawClient.connect(port);
    expect((await again.handshake(connect)).sessionPresent).toBe(true);
    await again.subscribe(`${root}/marker`, 1);
    const publisher = await connectClient(port, { clientId: `${root}-pub` });
    await publisher.publishAsync(`${root}/fine`, 'must not arrive', { qos: 1 });
    await publisher.publishAsync(`${root}/marker`, 'marker', { qos: 1 });
    expect((await again.next('publish')).payload.toString()).toBe('marker');
  });

  it('answers an invalid filter in UNSUBSCRIBE with 0x8F on MQTT 5', async () => {
    const raw = await RawClient.connect(port);
    await raw.handshake({ clientId: 'unsub-invalid', protocolVersion: 5 });
    raw.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['a/#/b'] }, 5);
    expect((await raw.next('unsuback')).granted).toEqual([0x8f]);
  });
});

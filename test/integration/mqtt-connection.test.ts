import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { TopicTree } from '../../src/mqtt/topic-tree.js';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { createTopic, readRecords } from '../support/kafka-helpers.js';
import { RawClient } from '../support/raw-client.js';
import { waitFor } from '../support/wait-for.js';

const MAX_PACKET_SIZE = 4096;
let running: RunningBridge;
let wills: string;

beforeAll(async () => {
  wills = await createTopic();
  running = await startBridge(
    `
uplink:
  - name: wills
    from: status/+
    to: { topic: ${wills}, key: "{clientId}" }
`,
    { mqtt: { maxPacketSize: MAX_PACKET_SIZE } },
  );
});

afterAll(async () => {
  await running.stop();
});

describe('CONNECT', () => {
  it.each([3, 4, 5] as const)('accepts MQTT protocol level %i', async (protocolVersion) => {
    const raw = await RawClient.connect(running.mqttPort);
    const connack = await raw.handshake({ clientId: `level-${protocolVersion}`, protocolVersion });
    expect(connack.returnCode ?? connack.reasonCode).toBe(0);
    expect(connack.sessionPresent).toBe(false);
  });

  it('refuses an unknown protocol level with CONNACK 0x01 [MQTT-3.1.2-2]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    // CONNECT, protocol name MQTT, level 6, clean session, keep alive 0, client id "x"
    raw.send(
      Buffer.from([
        0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x06, 0x02, 0x00, 0x00, 0x00, 0x01, 0x78,
      ]),
    );
    expect((await raw.next('connack')).returnCode).toBe(1);
    await raw.waitClosed();
  });

  it('refuses an empty client id without clean session on 3.1.1 [MQTT-3.1.3-8]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    // CONNECT, MQTT level 4, flags 0 (no clean session), keep alive 0, client id ""
    raw.send(
      Buffer.from([
        0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
      ]),
    );
    expect((await raw.next('connack')).returnCode).toBe(2);
    await raw.waitClosed();
  });

  it('assigns a client id to an MQTT 5 client that sends none [MQTT-3.2.2-16]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    const connack = await raw.handshake({ clientId: '', protocolVersion: 5 });
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties?.assignedClientIdentifier).toMatch(/^auto-[0-9a-f]{16}$/);
    expect(connack.properties?.maximumPacketSize).toBe(MAX_PACKET_SIZE);
  });

  it('closes a connection whose first packet is not CONNECT [MQTT-3.1.0-1]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    raw.send({ cmd: 'pingreq' });
    await raw.waitClosed();
    expect(raw.packets).toEqual([]);
  });

  it('treats a second CONNECT as a protocol error: DISCONNECT 0x82 on MQTT 5 [MQTT-3.1.0-2]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'twice', protocolVersion: 5 });
    raw.send(
      { cmd: 'connect', protocolVersion: 5, clientId: 'twice', clean: true, keepalive: 0 },
      5,
    );
    expect((await raw.next('disconnect')).reasonCode).toBe(0x82);
    await raw.waitClosed();
  });
});

describe('keep alive', () => {
  it('answers PINGREQ with PINGRESP', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'pinger', protocolVersion: 4 });
    raw.send({ cmd: 'pingreq' });
    await raw.next('pingresp');
  });

  it('closes a silent client after 1.5 × keep alive, with DISCONNECT 0x8D on MQTT 5 [MQTT-3.1.2-24]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    const started = Date.now();
    await raw.handshake({ clientId: 'silent', protocolVersion: 5, keepalive: 1 });
    expect((await raw.next('disconnect', 5000)).reasonCode).toBe(0x8d);
    await raw.waitClosed();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
  });

  it('keeps a client alive while it sends PINGREQ within the keep alive', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'pinging', protocolVersion: 4, keepalive: 1 });
    for (let round = 0; round < 4; round++) {
      await new Promise((resolve) => setTimeout(resolve, 600));
      raw.send({ cmd: 'pingreq' });
      await raw.next('pingresp');
    }
    expect(raw.closed).toBe(false);
  });
});

describe('one connection per client id', () => {
  it('takes over: the older MQTT 5 connection gets DISCONNECT 0x8E [MQTT-3.1.4-2]', async () => {
    const first = await RawClient.connect(running.mqttPort);
    await first.handshake({ clientId: 'same-id', protocolVersion: 5 });
    const second = await RawClient.connect(running.mqttPort);
    await second.handshake({ clientId: 'same-id', protocolVersion: 5 });
    expect((await first.next('disconnect')).reasonCode).toBe(0x8e);
    await first.waitClosed();
    second.send({ cmd: 'pingreq' }, 5);
    await second.next('pingresp');
  });

  it('takes over a 3.1.1 connection by closing it, and MQTT.js clients keep working', async () => {
    const older = await connectClient(running.mqttPort, { clientId: 'mqttjs-same' });
    let olderClosed = false;
    older.on('close', () => (olderClosed = true));
    const newer = await connectClient(running.mqttPort, { clientId: 'mqttjs-same' });
    await waitFor(() => olderClosed, { what: 'the older connection to close' });
    expect(newer.connected).toBe(true);
  });
});

describe('DISCONNECT and will', () => {
  it('publishes the will when the connection drops without DISCONNECT [MQTT-3.1.2-8]', async () => {
    const client = await connectClient(running.mqttPort, {
      clientId: 'will-dropper',
      will: { topic: 'status/will-dropper', payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    client.stream.destroy();
    const [record] = await readRecords(wills, 1, {
      match: (r) => r.key?.toString() === 'will-dropper',
    });
    expect(record?.value?.toString()).toBe('gone');
  });

  it('discards the will on a normal DISCONNECT [MQTT-3.1.2-10], sends it on MQTT 5 reason 0x04', async () => {
    const polite = await connectClient(running.mqttPort, {
      clientId: 'will-polite',
      will: {
        topic: 'status/will-polite',
        payload: Buffer.from('should not appear'),
        qos: 1,
        retain: false,
      },
    });
    await polite.endAsync();
    const asking = await connectClient(running.mqttPort, {
      protocolVersion: 5,
      clientId: 'will-asking',
      will: { topic: 'status/will-asking', payload: Buffer.from('asked'), qos: 1, retain: false },
    });
    await asking.endAsync(false, { reasonCode: 0x04 });
    // the polite client disconnected first: had its will been sent, it would come first
    const [record] = await readRecords(wills, 1, {
      match: (r) => ['will-polite', 'will-asking'].includes(r.key?.toString() ?? ''),
    });
    expect(record?.key?.toString()).toBe('will-asking');
    expect(record?.value?.toString()).toBe('asked');
  });

  it('sends the will on an MQTT 5 DISCONNECT with an error reason code [MQTT-3.1.2-10]', async () => {
    const failing = await connectClient(running.mqttPort, {
      protocolVersion: 5,
      clientId: 'will-error',
      will: { topic: 'status/will-error', payload: Buffer.from('erred'), qos: 1, retain: false },
    });
    await failing.endAsync(false, { reasonCode: 0x80 });
    const [record] = await readRecords(wills, 1, {
      match: (r) => r.key?.toString() === 'will-error',
    });
    expect(record?.value?.toString()).toBe('erred');
  });
});

describe('malformed and illegal input', () => {
  it('closes an MQTT 5 connection with 0x81 on a remaining length over four bytes', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'bad-length', protocolVersion: 5 });
    raw.send(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    expect((await raw.next('disconnect')).reasonCode).toBe(0x81);
    await raw.waitClosed();
  });

  it('closes with 0x95 on a packet above the maximum packet size, before reading its body', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'too-big', protocolVersion: 5 });
    // only the fixed header of a 1 MiB PUBLISH is sent
    raw.send(Buffer.from([0x30, 0x80, 0x80, 0x40]));
    expect((await raw.next('disconnect')).reasonCode).toBe(0x95);
    await raw.waitClosed();
  });

  it('closes with 0x90 on a wildcard in a PUBLISH topic [MQTT-3.3.2-2]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'wildcard', protocolVersion: 5 });
    raw.send(
      {
        cmd: 'publish',
        topic: 'status/+',
        payload: Buffer.from('x'),
        qos: 0,
        dup: false,
        retain: false,
      },
      5,
    );
    expect((await raw.next('disconnect')).reasonCode).toBe(0x90);
    await raw.waitClosed();
  });

  it('closes a 3.1.1 connection on QoS 3 [MQTT-3.3.1-4]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'qos3', protocolVersion: 4 });
    raw.send(Buffer.from([0x36, 0x05, 0x00, 0x01, 0x74, 0x00, 0x01]));
    await raw.waitClosed();
  });

  it('closes with 0x94 on topic alias 0 and accepts aliases up to the maximum', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    const connack = await raw.handshake({ clientId: 'alias', protocolVersion: 5 });
    const maximum = connack.properties?.topicAliasMaximum ?? 0;
    expect(maximum).toBeGreaterThan(0);
    raw.send(
      {
        cmd: 'publish',
        topic: 'status/alias',
        payload: Buffer.from('first'),
        qos: 1,
        messageId: 1,
        dup: false,
        retain: false,
        properties: { topicAlias: maximum },
      },
      5,
    );
    raw.send(
      {
        cmd: 'publish',
        topic: '',
        payload: Buffer.from('by alias'),
        qos: 1,
        messageId: 2,
        dup: false,
        retain: false,
        properties: { topicAlias: maximum },
      },
      5,
    );
    expect((await raw.next('puback')).reasonCode ?? 0).toBe(0);
    expect((await raw.next('puback')).reasonCode ?? 0).toBe(0);
    const records = await readRecords(wills, 2, { match: (r) => r.key?.toString() === 'alias' });
    expect(records.map((r) => r.value?.toString())).toEqual(['first', 'by alias']);

    raw.send(
      {
        cmd: 'publish',
        topic: 'status/alias',
        payload: Buffer.from('x'),
        qos: 0,
        dup: false,
        retain: false,
        properties: { topicAlias: 0 },
      },
      5,
    );
    expect((await raw.next('disconnect')).reasonCode).toBe(0x94);
  });

  it('keeps serving other clients while one sends garbage', async () => {
    const healthy = await connectClient(running.mqttPort, { clientId: 'healthy' });
    const garbage = await RawClient.connect(running.mqttPort);
    garbage.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    // at once, not at the CONNECT timeout (10 s): its first byte is no CONNECT
    await garbage.waitClosed(2_000);
    await healthy.publishAsync('status/healthy', 'still here', { qos: 1 });
    const [record] = await readRecords(wills, 1, { match: (r) => r.key?.toString() === 'healthy' });
    expect(record?.value?.toString()).toBe('still here');
  });
});

describe('MQTT 5 limits in CONNACK', () => {
  it('refuses an authentication method it does not support with 0x8C', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    expect(
      (
        await raw.handshake({
          protocolVersion: 5,
          clientId: 'auth-method',
          properties: { authenticationMethod: 'SCRAM-SHA-1' },
        })
      ).reasonCode,
    ).toBe(0x8c);
    await raw.waitClosed();
  });

  it('advertises Receive Maximum and disconnects with 0x93 beyond it [MQTT-3.3.4-9]', async () => {
    const topic = await createTopic();
    const bridge = await startBridge(
      `uplink:\n  - name: all\n    from: x/#\n    to: { topic: ${topic} }\n`,
      { mqtt: { receiveMaximum: 2 } },
    );
    try {
      const raw = await RawClient.connect(bridge.mqttPort);
      const connack = await raw.handshake({ clientId: 'greedy', protocolVersion: 5 });
      expect(connack.properties?.receiveMaximum).toBe(2);
      // acknowledgements wait for Kafka; sent in one write, the third publish
      // arrives while the first two are still unacknowledged
      const publishes = [1, 2, 3].map((messageId) =>
        mqttPacket.generate(
          {
            cmd: 'publish',
            topic: 'x/y',
            payload: Buffer.from('p'),
            qos: 2,
            messageId,
            dup: false,
            retain: false,
          },
          { protocolVersion: 5 },
        ),
      );
      raw.send(Buffer.concat(publishes));
      expect((await raw.next('disconnect')).reasonCode).toBe(0x93);
    } finally {
      await bridge.stop();
    }
  });

  it('imposes the maximum keep alive on MQTT 5 clients through Server Keep Alive', async () => {
    const bridge = await startBridge('uplink: []\n', { mqtt: { maxKeepAlive: 1 } });
    try {
      const raw = await RawClient.connect(bridge.mqttPort);
      const connack = await raw.handshake({
        clientId: 'forever',
        protocolVersion: 5,
      });
      expect(connack.properties?.serverKeepAlive).toBe(1);
      expect((await raw.next('disconnect', 5000)).reasonCode).toBe(0x8d);
    } finally {
      await bridge.stop();
    }
  });
});

describe('more malformed input', () => {
  it('closes with 0x81 on a topic that is not valid UTF-8 [MQTT-1.5.4-1]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'bad-utf8', protocolVersion: 5 });
    // PUBLISH QoS 0, topic of 2 bytes 0xC3 0x28 (invalid UTF-8), empty properties, payload "x"
    raw.send(Buffer.from([0x30, 0x06, 0x00, 0x02, 0xc3, 0x28, 0x00, 0x78]));
    expect((await raw.next('disconnect')).reasonCode).toBe(0x81);
  });

  it('closes with 0x81 on an encoded surrogate (ill-formed UTF-8) in a user property [MQTT-1.5.4-1]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'bad-surrogate', protocolVersion: 5 });
    // PUBLISH QoS 0, topic "a", properties: user property ("k", ED A0 80 = U+D800), payload "x"
    raw.send(
      Buffer.from([
        0x30, 0x0e, 0x00, 0x01, 0x61, 0x09, 0x26, 0x00, 0x01, 0x6b, 0x00, 0x03, 0xed, 0xa0, 0x80,
        0x78,
      ]),
    );
    expect((await raw.next('disconnect')).reasonCode).toBe(0x81);
  });

  it('closes the connection on U+0000 in a client id [MQTT-1.5.4-2]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    // CONNECT 3.1.1, clean session, keep alive 0, client id "a\0"
    raw.send(
      Buffer.from([
        0x10, 0x0e, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00, 0x00, 0x02, 0x61,
        0x00,
      ]),
    );
    await raw.waitClosed();
    expect(raw.packets).toEqual([]);
  });

  it('accepts a correctly encoded U+FFFD in a topic', async () => {
    const subscriber = await connectClient(running.mqttPort, { clientId: 'fffd-sub' });
    const received: string[] = [];
    subscriber.on('message', (topic) => received.push(topic));
    await subscriber.subscribeAsync('odd/+', { qos: 1 });
    const publisher = await connectClient(running.mqttPort, { clientId: 'fffd-pub' });
    await publisher.publishAsync('odd/\uFFFD', 'x', { qos: 1 });
    await waitFor(() => received.length === 1);
    expect(received).toEqual(['odd/\uFFFD']);
  });

  it('refuses a protocol name that does not go with the level (MQIsdp level 4) with CONNACK 0x01', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    raw.send(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQIsdp',
        protocolVersion: 4,
        clientId: 'mismatch',
        clean: true,
        keepalive: 0,
      }),
    );
    expect((await raw.next('connack')).returnCode).toBe(1);
    await raw.waitClosed();
  });

  it('closes a 3.1.1 connection whose CONNECT has a password but no user name [MQTT-3.1.2-22]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    // CONNECT 3.1.1, flags: password + clean session, keep alive 0, client id "p", password "pw"
    raw.send(
      Buffer.from([
        0x10, 0x11, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x42, 0x00, 0x00, 0x00, 0x01, 0x70,
        0x00, 0x02, 0x70, 0x77,
      ]),
    );
    await raw.waitClosed();
    expect(raw.packets).toEqual([]);
  });

  it('closes with 0x82 on a wildcard in a Response Topic [MQTT-3.3.2-14]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'bad-response-topic', protocolVersion: 5 });
    raw.send(
      {
        cmd: 'publish',
        topic: 'req/x',
        payload: Buffer.from('x'),
        qos: 0,
        dup: false,
        retain: false,
        properties: { responseTopic: 'replies/+' },
      },
      5,
    );
    expect((await raw.next('disconnect')).reasonCode).toBe(0x82);
  });

  it('closes with 0x81 on reserved flag bits that are set [MQTT-2.2.2-2]', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'bad-flags', protocolVersion: 5 });
    // SUBSCRIBE must have flags 0b0010; here 0b0000
    raw.send(Buffer.from([0x80, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 0x61, 0x00]));
    expect((await raw.next('disconnect')).reasonCode).toBe(0x81);
  });

  it('closes with 0x94 on a topic alias above the maximum', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    const connack = await raw.handshake({ clientId: 'alias-high', protocolVersion: 5 });
    const maximum = connack.properties?.topicAliasMaximum ?? 0;
    raw.send(
      {
        cmd: 'publish',
        topic: 'status/x',
        payload: Buffer.from('x'),
        qos: 0,
        dup: false,
        retain: false,
        properties: { topicAlias: maximum + 1 },
      },
      5,
    );
    expect((await raw.next('disconnect')).reasonCode).toBe(0x94);
  });
});

describe('shutdown', () => {
  it('sends MQTT 5 clients DISCONNECT 0x9C with the Server Reference when one is configured', async () => {
    const bridge = await startBridge('uplink: []\n', {
      mqtt: { serverReference: 'other-bridge:1883' },
    });
    const raw = await RawClient.connect(bridge.mqttPort);
    await raw.handshake({ clientId: 'redirected', protocolVersion: 5 });
    await bridge.stop();
    const disconnect = await raw.next('disconnect');
    expect(disconnect.reasonCode).toBe(0x9c);
    expect(disconnect.properties?.serverReference).toBe('other-bridge:1883');
  });

  it('sends DISCONNECT 0x8B (server shutting down) otherwise', async () => {
    const bridge = await startBridge('uplink: []\n');
    const raw = await RawClient.connect(bridge.mqttPort);
    await raw.handshake({ clientId: 'shut-down', protocolVersion: 5 });
    await bridge.stop();
    expect((await raw.next('disconnect')).reasonCode).toBe(0x8b);
  });
});

describe('input that once could crash the process', () => {
  it.each([
    ['an empty SUBSCRIBE (3.1.1)', 4, [0x82, 0x02, 0x00, 0x01]],
    ['an empty SUBSCRIBE (5)', 5, [0x82, 0x03, 0x00, 0x01, 0x00]],
    ['an empty UNSUBSCRIBE (5)', 5, [0xa2, 0x03, 0x00, 0x01, 0x00]],
    [
      'a PUBLISH with a user property cut short',
      5,
      [0x30, 0x07, 0x00, 0x01, 0x74, 0x03, 0x26, 0x00, 0x05],
    ],
  ] as const)('closes the connection on %s and keeps serving others', async (_, version, bytes) => {
    const healthy = await connectClient(running.mqttPort, {
      clientId: `healthy-${version}`,
      protocolVersion: 5,
    });
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: `crasher-${version}`, protocolVersion: version });
    raw.send(Buffer.from(bytes));
    await raw.waitClosed();
    await healthy.publishAsync('status/healthy', 'alive', { qos: 1 });
    expect(healthy.connected).toBe(true);
  });

  it('closes only the connection whose handler throws (a bug), with 0x83, and keeps serving others', async () => {
    // a bug injected where a SUBSCRIBE is handled: only the filter boom/# meets it
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with its `this` below
    const subscribe = TopicTree.prototype.subscribe;
    const spy = vi.spyOn(TopicTree.prototype, 'subscribe').mockImplementation(function (
      this: TopicTree<unknown>,
      clientId,
      filter,
      value,
    ) {
      if (filter === 'boom/#') throw new Error('injected bug');
      return subscribe.call(this, clientId, filter, value);
    });
    onTestFinished(() => {
      spy.mockRestore();
    });
    const healthy = await connectClient(running.mqttPort, {
      clientId: 'healthy-bug',
      protocolVersion: 5,
    });
    await healthy.subscribeAsync('healthy/#', { qos: 1 });
    const before = await running.metric('bridge_mqtt_protocol_errors_total{reason="83"}');
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'buggy', protocolVersion: 5 });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'boom/#', qos: 1 }] }, 5);
    expect((await raw.next('disconnect')).reasonCode).toBe(0x83);
    await raw.waitClosed();
    const received = new Promise<string>((resolve) => {
      healthy.once('message', (_topic, payload) => {
        resolve(payload.toString());
      });
    });
    await healthy.publishAsync('healthy/x', 'still here', { qos: 1 });
    expect(await received).toBe('still here');
    expect(await running.metric('bridge_mqtt_protocol_errors_total{reason="83"}')).toBe(before + 1);
  });

  it('does not send the will after a normal DISCONNECT even if the client reconnects at once', async () => {
    const watcher = await connectClient(running.mqttPort, { clientId: 'will-watcher' });
    const received: string[] = [];
    watcher.on('message', (_topic, payload) => received.push(payload.toString()));
    await watcher.subscribeAsync('status/quick', { qos: 1 });
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({
      protocolVersion: 4,
      clientId: 'quick',
      will: { topic: 'status/quick', payload: Buffer.from('will'), qos: 1, retain: false },
    });
    // the new connection's CONNECT follows the DISCONNECT at once
    const again = await RawClient.connect(running.mqttPort);
    raw.send({ cmd: 'disconnect' });
    await again.handshake({ clientId: 'quick', protocolVersion: 4 });
    await connectClient(running.mqttPort, { clientId: 'quick-marker' }).then((client) =>
      client.publishAsync('status/quick', 'marker', { qos: 1 }),
    );
    await waitFor(() => received.includes('marker'));
    expect(received).toEqual(['marker']);
  });
});

describe('packet identifiers and small clients', () => {
  it('answers a QoS 1 publish reusing an open QoS 2 packet id with PUBACK 0x91', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'id-reuse', protocolVersion: 5 });
    const publish = {
      cmd: 'publish' as const,
      topic: 'status/id-reuse',
      payload: Buffer.from('x'),
      dup: false,
      retain: false,
    };
    raw.send({ ...publish, qos: 2, messageId: 5 }, 5);
    await raw.next('pubrec');
    raw.send({ ...publish, qos: 1, messageId: 5 }, 5); // no PUBREL yet: 5 is in use
    expect((await raw.next('puback')).reasonCode).toBe(0x91);
  });

  it('leaves the reason string out of a DISCONNECT too large for the client’s Maximum Packet Size', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({
      protocolVersion: 5,
      clientId: 'tiny',
      properties: { maximumPacketSize: 20 },
    });
    raw.send(
      {
        cmd: 'publish',
        topic: 'status/+',
        payload: Buffer.alloc(0),
        qos: 0,
        dup: false,
        retain: false,
      },
      5,
    );
    const disconnect = await raw.next('disconnect');
    expect(disconnect.reasonCode).toBe(0x90);
    expect(disconnect.properties?.reasonString).toBeUndefined();
  });
});

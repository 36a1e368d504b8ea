import { Duplex } from 'node:stream';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Authenticator } from '../../../src/auth/authenticator.js';
import { Broker } from '../../../src/mqtt/broker.js';
import type { UplinkSink } from '../../../src/mqtt/uplink-sink.js';
import { BridgeMetrics } from '../../../src/observability/metrics.js';
import type { UplinkPublish } from '../../../src/rules/types.js';

/** A broker whose uplink stores every publish at once, and one client socket as a stream. */
function setUp(protocolVersion: 4 | 5 = 4): {
  uplinked: UplinkPublish[];
  client: Duplex;
  fromBroker: Packet[];
} {
  const uplinked: UplinkPublish[] = [];
  const sink: UplinkSink = {
    send(publish, onSettled) {
      uplinked.push({ ...publish, payload: Buffer.from(publish.payload) });
      onSettled?.({ kind: 'stored' });
    },
    onCongestion() {
      /* never congested */
    },
  };
  const broker = new Broker(
    sink,
    {
      maxPacketSize: 1024 * 1024,
      maxQueuedMessages: 1000,
      maxDelayedMessages: 10,
      maxDelayedPerClient: 10,
      maxSubscriptionsPerClient: 100,
      maxTopicLevels: 32,
      maxTopicLength: 1024,
      maxPublishRate: 0,
      maxKeepAlive: 0,
      maxSessionExpiry: 0,
      responseTopicPrefix: '',
      serverReference: '',
      redirect: 'none',
      authenticator: new Authenticator(undefined),
      anonymousAccess: 'anywhere',
      connectTimeoutMs: 10_000,
      connectionLimits: { maxConnections: 10, maxConnectionsPerAddress: 0, maxConnectRate: 0 },
      topicAliasMaximum: 10,
      receiveMaximum: 10_000,
      maxInflight: 100,
      maxWriteBuffer: 1024 * 1024,
    },
    pino({ level: 'silent' }),
    new BridgeMetrics(),
  );
  const fromBroker: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion });
  parser.on('packet', (packet: Packet) => fromBroker.push(packet));
  const client = new Duplex({
    read() {
      /* pushed by the test */
    },
    write(chunk: Buffer, _encoding, callback) {
      parser.parse(chunk);
      callback();
    },
  });
  broker.accept(client, '127.0.0.1');
  return { uplinked, client, fromBroker };
}

function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Connection framing (PUBLISH fast path and mqtt-packet together)', () => {
  for (const [seed, protocolVersion] of [
    [1, 4],
    [2, 4],
    [3, 4],
    [4, 4],
    [5, 5],
    [6, 5],
  ] as const) {
    it(`takes a stream cut at random places as the packets it holds (MQTT ${protocolVersion}, seed ${seed})`, async () => {
      const next = random(seed);
      const { uplinked, client, fromBroker } = setUp(protocolVersion);
      const packets: Buffer[] = [
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion,
          clientId: `framing-${seed}`,
          clean: true,
          keepalive: 0,
        }),
      ];
      const expected: Array<{ topic: string; size: number; qos: number }> = [];
      let id = 0;
      for (let index = 0; index < 300; index++) {
        const kind = next();
        if (kind < 0.05) {
          packets.push(mqttPacket.generate({ cmd: 'pingreq' }));
          continue;
        }
        // non-ASCII topics go to mqtt-packet, the rest to the fast path
        const qos = kind < 0.15 ? 2 : kind < 0.5 ? 0 : 1;
        const topic = next() < 0.1 ? `tést/${index}` : `t/${index}`;
        const size = [0, 10, 300, 5000, 70_000][Math.floor(next() * 5)] as number;
        const payload = Buffer.alloc(size, index % 256);
        id = (id % 65_535) + 1;
        packets.push(
          mqttPacket.generate(
            {
              cmd: 'publish',
              topic,
              payload,
              qos,
              retain: false,
              dup: false,
              ...(qos > 0 && { messageId: id }),
            },
            { protocolVersion },
          ),
        );
        expected.push({ topic, size, qos });
      }
      const stream = Buffer.concat(packets);
      let offset = 0;
      while (offset < stream.length) {
        const cut = [1, 2, 3, 7, 100, 1000, 20_000][Math.floor(next() * 7)] as number;
        client.push(stream.subarray(offset, offset + cut));
        offset += cut;
        if (next() < 0.3) await tick();
      }
      for (let wait = 0; wait < 50 && uplinked.length < expected.length; wait++) await tick();
      // QoS 2 goes on to PUBREL: the uplink has it at PUBREC already
      expect(
        uplinked.map(({ topic, payload, qos }) => ({ topic, size: payload.length, qos })),
      ).toEqual(expected);
      for (const [index, publish] of uplinked.entries()) {
        expect(publish.payload.every((byte) => byte === publish.payload[0])).toBe(true);
        expect(index).toBeGreaterThanOrEqual(0);
      }
      await tick();
      const acks = fromBroker.filter(
        (packet) => packet.cmd === 'puback' || packet.cmd === 'pubrec',
      );
      expect(acks.length).toBe(expected.filter(({ qos }) => qos > 0).length);
      expect(fromBroker.filter((packet) => packet.cmd === 'disconnect')).toEqual([]);
      client.destroy();
    });
  }

  it('closes the connection on a malformed publish after fast-path ones, as before', async () => {
    const { uplinked, client, fromBroker } = setUp();
    client.push(
      Buffer.concat([
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: 'malformed',
          clean: true,
          keepalive: 0,
        }),
        mqttPacket.generate({
          cmd: 'publish',
          topic: 'a/b',
          payload: Buffer.from('x'),
          qos: 1,
          messageId: 1,
          retain: false,
          dup: false,
        }),
        // QoS 3
        Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x02]),
        mqttPacket.generate({
          cmd: 'publish',
          topic: 'a/c',
          payload: Buffer.from('y'),
          qos: 0,
          retain: false,
          dup: false,
        }),
      ]),
    );
    for (let wait = 0; wait < 20; wait++) await tick();
    expect(uplinked.map(({ topic }) => topic)).toEqual(['a/b']);
    expect(client.writableEnded || client.destroyed || fromBroker.length >= 1).toBe(true);
    await new Promise<void>((resolve) => {
      if (client.readableEnded || client.destroyed) resolve();
      else
        client.once('finish', () => {
          resolve();
        });
      setTimeout(resolve, 200);
    });
  });

  for (const [what, tail, reasonCode] of [
    // a PUBACK with flags 0x2, announcing a megabyte that never comes
    ['invalid header flags', [0x42, 0x80, 0x80, 0x40], 0x81],
    // a PUBLISH announcing 2 MiB, over the maximum packet size of 1 MiB
    ['a size over the maximum', [0x30, 0x80, 0x80, 0x80, 0x01], 0x95],
  ] as const) {
    it(`refuses a packet with ${what} at its first bytes, after the whole packets before it`, async () => {
      const { uplinked, client, fromBroker } = setUp(5);
      client.push(
        Buffer.concat([
          mqttPacket.generate(
            {
              cmd: 'connect',
              protocolId: 'MQTT',
              protocolVersion: 5,
              clientId: 'flags',
              clean: true,
              keepalive: 0,
            },
            { protocolVersion: 5 },
          ),
          mqttPacket.generate(
            {
              cmd: 'publish',
              topic: 'a/b',
              payload: Buffer.from('x'),
              qos: 0,
              retain: false,
              dup: false,
            },
            { protocolVersion: 5 },
          ),
          Buffer.from(tail),
        ]),
      );
      for (let wait = 0; wait < 20 && !fromBroker.some(({ cmd }) => cmd === 'disconnect'); wait++) {
        await tick();
      }
      expect(uplinked.map(({ topic }) => topic)).toEqual(['a/b']);
      expect(fromBroker.find(({ cmd }) => cmd === 'disconnect')).toMatchObject({
        reasonCode,
      });
      client.destroy();
    });
  }
});

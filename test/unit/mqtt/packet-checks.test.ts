import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { packetProblem } from '../../../src/mqtt/packet-checks.js';

/** Parses raw bytes as an MQTT 5 connection would. */
function parse5(bytes: number[]): Packet {
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  let packet: Packet | undefined;
  parser.on('packet', (parsed: Packet) => (packet = parsed));
  parser.parse(Buffer.from(bytes));
  if (!packet) throw new Error('not parsed');
  return packet;
}

describe('packetProblem', () => {
  it('accepts ordinary packets', () => {
    expect(
      packetProblem({
        cmd: 'publish',
        topic: 'a',
        payload: Buffer.from('x'),
        qos: 1,
        messageId: 3,
        dup: false,
        retain: false,
        properties: { userProperties: { a: ['1', '2'] }, contentType: 'text/plain' },
      }),
    ).toBeUndefined();
  });

  it('refuses a property that mqtt-packet could only read as null (cut short) with 0x81', () => {
    // PUBLISH QoS 0, topic "t", properties length 3: user property (0x26) whose name claims 5 bytes
    const packet = parse5([0x30, 0x07, 0x00, 0x01, 0x74, 0x03, 0x26, 0x00, 0x05]);
    expect(packetProblem(packet)?.reasonCode).toBe(0x81);
  });

  it('refuses a property given twice with 0x82, user properties excepted', () => {
    // PUBLISH QoS 0, topic "t", content type (0x03) "a" twice
    const packet = parse5([
      0x30, 0x0c, 0x00, 0x01, 0x74, 0x08, 0x03, 0x00, 0x01, 0x61, 0x03, 0x00, 0x01, 0x61,
    ]);
    expect(packetProblem(packet)).toMatchObject({ reasonCode: 0x82 });
  });

  it('refuses empty SUBSCRIBE and UNSUBSCRIBE, packet id 0 and DUP on QoS 0', () => {
    expect(packetProblem({ cmd: 'subscribe', messageId: 1, subscriptions: [] })?.reasonCode).toBe(
      0x82,
    );
    expect(
      packetProblem({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: [] })?.reasonCode,
    ).toBe(0x82);
    expect(
      packetProblem({ cmd: 'subscribe', messageId: 0, subscriptions: [{ topic: 'a', qos: 0 }] })
        ?.reasonCode,
    ).toBe(0x82);
    const publish = {
      cmd: 'publish' as const,
      topic: 'a',
      payload: Buffer.alloc(0),
      retain: false,
    };
    expect(packetProblem({ ...publish, qos: 0, dup: true })?.reasonCode).toBe(0x81);
    expect(packetProblem({ ...publish, qos: 1, dup: false, messageId: 0 })?.reasonCode).toBe(0x82);
  });

  it('refuses a Subscription Identifier in a PUBLISH from a client', () => {
    expect(
      packetProblem({
        cmd: 'publish',
        topic: 'a',
        payload: Buffer.alloc(0),
        qos: 0,
        dup: false,
        retain: false,
        properties: { subscriptionIdentifier: 4 },
      })?.reasonCode,
    ).toBe(0x82);
  });

  it('refuses a wildcard in a Response Topic, in PUBLISH and in a will, with 0x82', () => {
    const connect = {
      cmd: 'connect' as const,
      protocolId: 'MQTT' as const,
      protocolVersion: 5 as const,
      clientId: 'c',
      clean: true,
      keepalive: 0,
    };
    const will = { topic: 'w', payload: Buffer.from('x'), qos: 0 as const, retain: false };
    expect(
      packetProblem({ ...connect, will: { ...will, properties: { responseTopic: 'r/#' } } })
        ?.reasonCode,
    ).toBe(0x82);
    expect(
      packetProblem({ ...connect, will: { ...will, properties: { responseTopic: 'r/1' } } }),
    ).toBeUndefined();
  });

  it('refuses a password without a user name on 3.1.1 only [MQTT-3.1.2-22]', () => {
    const connect = {
      cmd: 'connect' as const,
      protocolId: 'MQTT' as const,
      clientId: 'c',
      clean: true,
      keepalive: 0,
      password: Buffer.from('pw'),
    };
    expect(packetProblem({ ...connect, protocolVersion: 4 })?.reasonCode).toBe(0x82);
    expect(packetProblem({ ...connect, protocolVersion: 5 })).toBeUndefined();
  });

  it('refuses a property the packet type does not have with 0x81 (MQTT 5.0 §2.2.2.2)', () => {
    const publish = {
      cmd: 'publish' as const,
      topic: 'a',
      payload: Buffer.alloc(0),
      qos: 0 as const,
      dup: false,
      retain: false,
    };
    expect(
      packetProblem({ ...publish, properties: { sessionExpiryInterval: 5 } as never }),
    ).toEqual({
      reasonCode: 0x81,
      reason: 'property sessionExpiryInterval is not allowed in this packet',
    });
    expect(
      packetProblem({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clientId: 'c',
        clean: true,
        keepalive: 0,
        properties: { serverKeepAlive: 10 } as never,
      })?.reasonCode,
    ).toBe(0x81);
    expect(
      packetProblem({ ...publish, properties: { contentType: 'text/plain', topicAlias: 1 } }),
    ).toBeUndefined();
  });
});

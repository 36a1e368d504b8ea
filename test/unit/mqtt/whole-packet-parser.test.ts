import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { parseWholePackets, type PacketSink } from '../../../src/mqtt/whole-packet-parser.js';

function recorder(): PacketSink & { packets: Packet[]; errors: string[] } {
  const packets: Packet[] = [];
  const errors: string[] = [];
  return {
    packets,
    errors,
    packet: (packet) => packets.push(packet),
    error: (error) => errors.push(error.message),
  };
}

const publish = (topic: string, protocolVersion: 4 | 5): Buffer =>
  mqttPacket.generate(
    {
      cmd: 'publish',
      topic,
      payload: Buffer.from(`payload of ${topic}`),
      qos: 1,
      messageId: 7,
      retain: false,
      dup: false,
      ...(protocolVersion === 5 && { properties: { contentType: 'text/plain' } }),
    },
    { protocolVersion },
  );

describe('parseWholePackets (mqtt-packet parsers shared by connections)', () => {
  it('reads each call in the version it is given: 3.1.1 and 5 interleaved', () => {
    const v4 = recorder();
    const v5 = recorder();
    for (let i = 0; i < 3; i++) {
      parseWholePackets(publish(`a/${i}`, 4), 4, v4);
      parseWholePackets(publish(`b/${i}`, 5), 5, v5);
    }
    expect(v4.packets.map((packet) => (packet as { topic: string }).topic)).toEqual([
      'a/0',
      'a/1',
      'a/2',
    ]);
    expect(v5.packets.map((packet) => (packet as { properties?: object }).properties)).toEqual([
      { contentType: 'text/plain' },
      { contentType: 'text/plain' },
      { contentType: 'text/plain' },
    ]);
    expect([...v4.errors, ...v5.errors]).toEqual([]);
  });

  it('reads the packets after a CONNECT in the CONNECT’s version', () => {
    const sink = recorder();
    const connect = mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clientId: 'c',
      clean: true,
      keepalive: 0,
    });
    parseWholePackets(Buffer.concat([connect, publish('x', 5)]), 4, sink);
    expect(sink.packets.map((packet) => packet.cmd)).toEqual(['connect', 'publish']);
    expect((sink.packets[1] as { properties?: object }).properties).toEqual({
      contentType: 'text/plain',
    });
  });

  it('a malformed packet of one connection leaves nothing behind for the next', () => {
    const broken = recorder();
    // a SUBSCRIBE asking for QoS 3: mqtt-packet stops once it has read the filter
    parseWholePackets(Buffer.from([0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x03]), 4, broken);
    expect(broken.errors.length).toBe(1);
    const next = recorder();
    parseWholePackets(publish('after', 4), 4, next);
    expect(next.errors).toEqual([]);
    expect((next.packets[0] as { topic: string }).topic).toBe('after');
  });

  it('a handler that throws leaves nothing behind for the next', () => {
    const bytes = Buffer.concat([publish('one', 4), publish('two', 4)]);
    expect(() => {
      parseWholePackets(bytes, 4, {
        packet: () => {
          throw new Error('handler bug');
        },
        error: () => undefined,
      });
    }).toThrow('handler bug');
    const next = recorder();
    parseWholePackets(publish('fresh', 4), 4, next);
    expect(next.packets.map((packet) => (packet as { topic: string }).topic)).toEqual(['fresh']);
  });

  it('a handler that parses again (another connection) gets a parser of its own', () => {
    const inner = recorder();
    const outer = recorder();
    parseWholePackets(Buffer.concat([publish('o1', 4), publish('o2', 4)]), 4, {
      packet: (packet) => {
        outer.packet(packet);
        if (outer.packets.length === 1) parseWholePackets(publish('i1', 5), 5, inner);
      },
      error: (error) => {
        outer.error(error);
      },
    });
    expect(outer.packets.map((packet) => (packet as { topic: string }).topic)).toEqual([
      'o1',
      'o2',
    ]);
    expect(inner.packets.map((packet) => (packet as { topic: string }).topic)).toEqual(['i1']);
  });
});

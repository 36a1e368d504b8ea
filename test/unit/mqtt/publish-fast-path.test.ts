import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { decodePlainPublish, frameEnd, frameSize } from '../../../src/mqtt/publish-fast-path.js';
import { parseWholePackets } from '../../../src/mqtt/whole-packet-parser.js';

/** What the strict mqtt-packet parser makes of `bytes`: packets, or its error. */
function strictParse(
  bytes: Buffer,
  protocolVersion: 4 | 5 = 4,
): { packets: Packet[]; error: string | undefined } {
  const packets: Packet[] = [];
  let error: string | undefined;
  parseWholePackets(bytes, protocolVersion, {
    packet: (packet) => packets.push(packet),
    error: (cause) => (error = cause.message),
  });
  return { packets, error };
}

function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

const fields = (packet: Packet) => {
  const { cmd, retain, qos, dup, length, topic, payload, messageId, properties } =
    packet as IPublishPacket;
  const bytes = Buffer.from(payload);
  // the payload compared by a digest: toEqual on large buffers is slow
  return {
    cmd,
    retain,
    qos,
    dup,
    length,
    topic,
    payload: `${bytes.length}:${bytes.toString('base64').slice(0, 64)}:${bytes.reduce((sum, byte) => (sum * 31 + byte) % 1_000_003, 7)}`,
    messageId,
    properties,
  };
};

/** A random topic of characters U+0001..U+007F. */
function randomTopic(next: () => number): string {
  const topicLength = Math.floor(next() * 60);
  return Array.from({ length: topicLength }, () =>
    String.fromCharCode(1 + Math.floor(next() * 127)),
  ).join('');
}

describe('PUBLISH fast path', () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`decodes QoS 0, 1 and 2 publishes as the strict parser does, payload without a copy (version ${protocolVersion})`, () => {
      const next = random(42);
      const sizes = [0, 1, 100, 127, 128, 16_383, 16_384, 70_000];
      for (let index = 0; index < 300; index++) {
        const qos = Math.floor(next() * 3) as 0 | 1 | 2;
        const payload = Buffer.alloc(sizes[index % sizes.length] as number, index % 251);
        const topicAlias =
          protocolVersion === 5 && next() < 0.5 ? 1 + Math.floor(next() * 65_535) : undefined;
        const bytes = mqttPacket.generate(
          {
            cmd: 'publish',
            topic: randomTopic(next),
            payload,
            qos,
            retain: next() < 0.3,
            dup: qos > 0 && next() < 0.3,
            messageId: qos > 0 ? Math.floor(next() * 65_536) : undefined,
            properties: topicAlias === undefined ? undefined : { topicAlias },
          },
          { protocolVersion },
        );
        // inside a larger chunk, at an offset
        const chunk = Buffer.concat([Buffer.from([0xc0, 0x00]), bytes, Buffer.from([0xc0])]);
        expect(frameEnd(chunk, 2)).toBe(2 + bytes.length);
        const fast = decodePlainPublish(chunk, 2, 2 + bytes.length, protocolVersion);
        const { packets, error } = strictParse(bytes, protocolVersion);
        expect(error).toBeUndefined();
        expect(fast, `packet ${index}`).toBeDefined();
        expect(fields(fast as Packet)).toEqual(fields(packets[0] as Packet));
        expect(((fast as IPublishPacket).payload as Buffer).buffer).toBe(chunk.buffer);
      }
    });
  }

  it('leaves MQTT 5 publishes with other properties to mqtt-packet', () => {
    const publish = (properties: IPublishPacket['properties']) => {
      const bytes = mqttPacket.generate(
        {
          cmd: 'publish',
          topic: 'a',
          payload: 'x',
          qos: 1,
          dup: false,
          retain: false,
          messageId: 1,
          properties,
        },
        { protocolVersion: 5 },
      );
      return decodePlainPublish(bytes, 0, bytes.length, 5);
    };
    expect(publish({ messageExpiryInterval: 10 })).toBeUndefined();
    expect(publish({ topicAlias: 2, contentType: 'text/plain' })).toBeUndefined();
    expect(publish({ userProperties: { a: 'b' } })).toBeUndefined();
    expect(publish({ topicAlias: 2 })).toMatchObject({ properties: { topicAlias: 2 } });
    expect(publish({})).not.toHaveProperty('properties');
    // no Property Length at all, a Topic Alias cut short
    expect(
      decodePlainPublish(Buffer.from([0x32, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]), 0, 7, 5),
    ).toBeUndefined();
    expect(
      decodePlainPublish(Buffer.from([0x30, 0x06, 0x00, 0x01, 0x61, 0x03, 0x23, 0x00]), 0, 8, 5),
    ).toBeUndefined();
  });

  it('leaves to mqtt-packet what it does not decode with certainty', () => {
    const publish = (header: number, body: number[]) => {
      const bytes = Buffer.from([header, body.length, ...body]);
      return decodePlainPublish(bytes, 0, bytes.length, 4);
    };
    const topic = [0x00, 0x01, 0x61];
    // QoS 3 (malformed), DUP on QoS 0 (malformed)
    expect(publish(0x36, [...topic, 0x00, 0x01])).toBeUndefined();
    expect(publish(0x38, [...topic])).toBeUndefined();
    // topic with U+0000, with non-ASCII (valid or not), longer than the packet
    expect(publish(0x30, [0x00, 0x01, 0x00])).toBeUndefined();
    expect(publish(0x30, [0x00, 0x02, 0xc3, 0xa4])).toBeUndefined();
    expect(publish(0x30, [0x00, 0x02, 0xed, 0xa0])).toBeUndefined();
    expect(publish(0x30, [0x00, 0x05, 0x61])).toBeUndefined();
    // packet identifier cut short, no topic length at all
    expect(publish(0x32, [...topic, 0x01])).toBeUndefined();
    expect(publish(0x30, [0x00])).toBeUndefined();
    // other packet types
    expect(publish(0x40, [0x00, 0x01])).toBeUndefined();
    expect(publish(0xc0, [])).toBeUndefined();
    // a plain one passes
    expect(publish(0x32, [...topic, 0x00, 0x07, 0x78])).toMatchObject({
      topic: 'a',
      qos: 1,
      messageId: 7,
    });
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`takes nothing the strict parser refuses, and decodes as it does (random bytes, version ${protocolVersion})`, () => {
      const next = random(7);
      let decoded = 0;
      for (let index = 0; index < 20_000; index++) {
        const length = 2 + Math.floor(next() * 12);
        const body = Array.from({ length }, () =>
          next() < 0.7 ? 0x20 + Math.floor(next() * 0x60) : Math.floor(next() * 256),
        );
        if (next() < 0.7) body[0] = 0;
        if (next() < 0.7) body[1] = Math.floor(next() * (length - 1));
        // in MQTT 5, a Property Length of 0 or a Topic Alias after the topic and identifier
        const idEnd = 2 + (body[1] ?? 0) + (next() < 0.5 ? 2 : 0);
        if (protocolVersion === 5 && idEnd < length && next() < 0.7) {
          body[idEnd] = next() < 0.5 ? 0 : 3;
          body[idEnd + 1] = 0x23;
        }
        const header = 0x30 | Math.floor(next() * 16);
        const bytes = Buffer.from([header, length, ...body.slice(0, length)]);
        const fast = decodePlainPublish(bytes, 0, bytes.length, protocolVersion);
        if (fast === undefined) continue;
        decoded++;
        const { packets, error } = strictParse(bytes, protocolVersion);
        expect(error, bytes.toString('hex')).toBeUndefined();
        expect(fields(fast)).toEqual(fields(packets[0] as Packet));
      }
      // the comparison saw enough packets decoded to mean something
      expect(decoded).toBeGreaterThan(500);
    });
  }

  it('finds where a packet ends, or that it has not arrived whole', () => {
    expect(frameEnd(Buffer.from([0x30]), 0)).toBe(-1);
    expect(frameEnd(Buffer.from([0x30, 0x80]), 0)).toBe(-1);
    expect(frameEnd(Buffer.from([0x30, 0x03, 0, 1]), 0)).toBe(-1);
    expect(frameEnd(Buffer.from([0x30, 0x02, 0, 0]), 0)).toBe(4);
    expect(frameEnd(Buffer.from([0xc0, 0x00]), 0)).toBe(2);
    const large = Buffer.concat([Buffer.from([0x30, 0x80, 0x01]), Buffer.alloc(128)]);
    expect(frameEnd(large, 0)).toBe(131);
  });
});

describe('frameSize', () => {
  it('reads the whole size from the fixed header alone', () => {
    expect(frameSize(Buffer.from([0x30, 0x80, 0x01]), 0)).toBe(131);
    expect(frameSize(Buffer.from([0x30, 0x7f]), 0)).toBe(129);
    expect(frameSize(Buffer.from([0x30, 0x80]), 0)).toBe(-1);
    expect(frameSize(Buffer.from([0x30]), 0)).toBe(-1);
  });
});

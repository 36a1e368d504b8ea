import mqttPacket, { type IPublishPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import {
  isPlainPublish,
  plainPublishSize,
  writePlainPublish,
  type PlainPublish,
} from '../../../src/mqtt/publish-encoder.js';

function encode(packet: PlainPublish, protocolVersion: 3 | 4 | 5): Buffer {
  const v5 = protocolVersion === 5;
  const size = plainPublishSize(packet, v5);
  // written in the middle of a larger buffer, as into a connection's gathered chunk
  const target = Buffer.alloc(size.total + 10, 0xee);
  const end = writePlainPublish(target, 3, packet, size, v5);
  expect(end).toBe(3 + size.total);
  expect(target.subarray(0, 3).equals(Buffer.alloc(3, 0xee))).toBe(true);
  expect(target.subarray(end).equals(Buffer.alloc(7, 0xee))).toBe(true);
  return target.subarray(3, end);
}

describe('the plain PUBLISH encoder', () => {
  const topics = ['a', 'devices/d1/commands', 'ünïcødé/🚀/x', 't'.repeat(300)];
  // Remaining Lengths of one to four bytes
  const payloads = [0, 1, 200, 20_000, 2_200_000].map((n) => Buffer.alloc(n, n % 251));

  it('writes the bytes mqtt-packet writes, for every version, QoS and flag', () => {
    let compared = 0;
    for (const protocolVersion of [3, 4, 5] as const) {
      for (const qos of [0, 1, 2] as const) {
        for (const topic of topics) {
          for (const payload of payloads) {
            for (const [dup, retain] of [
              [false, false],
              [true, true],
              [false, true],
            ] as const) {
              const packet: PlainPublish = {
                cmd: 'publish',
                topic,
                payload,
                qos,
                dup: qos > 0 && dup,
                retain,
                ...(qos > 0 ? { messageId: 65_535 - compared } : {}),
                ...(protocolVersion === 5 ? { properties: {} } : {}),
              };
              // Buffer#equals: toEqual walks megabytes byte by byte
              const expected = mqttPacket.generate(packet, { protocolVersion });
              if (!encode(packet, protocolVersion).equals(expected)) {
                expect.fail(
                  `differs: ${JSON.stringify({ protocolVersion, qos, topic, dup, retain })}`,
                );
              }
              compared++;
            }
          }
        }
      }
    }
    expect(compared).toBe(3 * 3 * topics.length * payloads.length * 3);
  });

  it('never sets DUP on QoS 0 [MQTT-3.3.1-2]', () => {
    const packet: PlainPublish = {
      cmd: 'publish',
      topic: 't',
      payload: Buffer.from('x'),
      qos: 0,
      dup: true,
      retain: false,
    };
    expect((encode(packet, 4)[0] as number) & 0x08).toBe(0);
  });

  it('leaves to mqtt-packet what it does not write', () => {
    const base: IPublishPacket = {
      cmd: 'publish',
      topic: 't',
      payload: Buffer.from('x'),
      qos: 1,
      messageId: 1,
      dup: false,
      retain: false,
    };
    expect(isPlainPublish(base)).toBe(true);
    expect(isPlainPublish({ ...base, properties: {} })).toBe(true);
    expect(isPlainPublish({ ...base, properties: { contentType: undefined } })).toBe(true);
    expect(isPlainPublish({ ...base, properties: { contentType: 'text/plain' } })).toBe(false);
    expect(isPlainPublish({ ...base, properties: { topicAlias: 1 } })).toBe(false);
    expect(isPlainPublish({ ...base, payload: 'text' })).toBe(false);
    expect(isPlainPublish({ ...base, topic: '' })).toBe(false);
    const withoutId: IPublishPacket = { ...base, messageId: undefined };
    expect(isPlainPublish(withoutId)).toBe(false);
    expect(isPlainPublish({ ...withoutId, qos: 0 })).toBe(true);
  });
});

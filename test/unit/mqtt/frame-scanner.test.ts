import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { FrameScanner } from '../../../src/mqtt/frame-scanner.js';

const publish = (payloadBytes: number): Buffer =>
  mqttPacket.generate({
    cmd: 'publish',
    topic: 't',
    payload: Buffer.alloc(payloadBytes),
    qos: 0,
    dup: false,
    retain: false,
  });

describe('FrameScanner', () => {
  it('accepts packets up to the maximum size, whole or split byte by byte', () => {
    const packet = publish(1000);
    const whole = new FrameScanner(packet.length);
    expect(whole.scan(Buffer.concat([packet, packet, packet]))).toBeUndefined();
    const split = new FrameScanner(packet.length);
    for (const byte of packet) expect(split.scan(Buffer.from([byte]))).toBeUndefined();
  });

  it('refuses a packet larger than the maximum as soon as its header arrives', () => {
    const packet = publish(1000);
    const scanner = new FrameScanner(packet.length - 1);
    // only the fixed header (1 type byte + 2 length bytes) is needed
    expect(scanner.scan(packet.subarray(0, 3))).toBe('packet-too-large');
  });

  it('finds an oversize packet after valid ones in the same chunk', () => {
    const small = publish(10);
    const scanner = new FrameScanner(100);
    expect(scanner.scan(Buffer.concat([small, publish(200)]))).toBe('packet-too-large');
  });

  it('refuses a remaining length of more than four bytes [MQTT-1.5.5-1]', () => {
    const scanner = new FrameScanner(Number.MAX_SAFE_INTEGER);
    expect(scanner.scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe(
      'malformed-remaining-length',
    );
  });

  it('handles empty packets such as PINGREQ', () => {
    const scanner = new FrameScanner(2);
    expect(scanner.scan(Buffer.from([0xc0, 0x00, 0xc0, 0x00]))).toBeUndefined();
  });
});

import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { FrameScanner, firstByteProblem } from '../../../src/mqtt/frame-scanner.js';

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
    const whole = new FrameScanner();
    expect(whole.scan(Buffer.concat([packet, packet, packet]), packet.length)).toBeUndefined();
    const split = new FrameScanner();
    for (const byte of packet)
      expect(split.scan(Buffer.from([byte]), packet.length)).toBeUndefined();
  });

  it('refuses a packet larger than the maximum as soon as its header arrives', () => {
    const packet = publish(1000);
    const scanner = new FrameScanner();
    // only the fixed header (1 type byte + 2 length bytes) is needed
    expect(scanner.scan(packet.subarray(0, 3), packet.length - 1)).toBe('packet-too-large');
  });

  it('finds an oversize packet after valid ones in the same chunk', () => {
    const small = publish(10);
    const scanner = new FrameScanner();
    expect(scanner.scan(Buffer.concat([small, publish(200)]), 100)).toBe('packet-too-large');
  });

  it('refuses a remaining length of more than four bytes [MQTT-1.5.5-1]', () => {
    const scanner = new FrameScanner();
    expect(
      scanner.scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), Number.MAX_SAFE_INTEGER),
    ).toBe('malformed-remaining-length');
  });

  it('handles empty packets such as PINGREQ', () => {
    const scanner = new FrameScanner();
    expect(scanner.scan(Buffer.from([0xc0, 0x00, 0xc0, 0x00]), 2)).toBeUndefined();
  });

  it('refuses a reserved packet type or invalid header flags at the first byte [MQTT-2.2.2-2]', () => {
    // the length announces a megabyte that never comes
    for (const first of [0x00, 0x0f, 0x36, 0x3e, 0x42, 0x60, 0x80, 0xa0, 0xc1, 0xe8, 0xf1]) {
      const scanner = new FrameScanner();
      expect(
        scanner.scan(Buffer.from([first, 0x80, 0x80, 0x40]), 2 * 1024 * 1024),
        first.toString(16),
      ).toMatch(/^malformed-(packet-type|header-flags)$/);
    }
    expect(firstByteProblem(0x00)).toBe('malformed-packet-type');
    expect(firstByteProblem(0x36)).toBe('malformed-header-flags');
  });

  it('takes every first byte mqtt-packet takes', () => {
    const valid = [
      0x10, 0x20, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xa2, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0,
    ];
    // PUBLISH: DUP, QoS 0-2 and RETAIN in every combination
    for (let flags = 0; flags < 16; flags++) if ((flags & 0x06) !== 0x06) valid.push(0x30 | flags);
    for (let byte = 0; byte < 256; byte++) {
      expect(firstByteProblem(byte), byte.toString(16)).toEqual(
        valid.includes(byte) ? undefined : expect.any(String),
      );
    }
  });

  it('says where the refused packet starts, after the whole ones before it', () => {
    const small = publish(10);
    const scanner = new FrameScanner();
    expect(scanner.scan(Buffer.concat([small, small, Buffer.from([0x42, 0x02])]), 100)).toBe(
      'malformed-header-flags',
    );
    expect(scanner.problemStart).toBe(2 * small.length);
    const split = new FrameScanner();
    expect(split.scan(Buffer.concat([small, Buffer.from([0x30])]), 100)).toBeUndefined();
    expect(split.scan(Buffer.from([0x80, 0x01]), 100)).toBe('packet-too-large');
    expect(split.problemStart).toBeLessThanOrEqual(0);
  });

  it('is kept by a stream only while a chunk has ended inside a packet', () => {
    const packet = publish(10);
    // whole packets: the shared scanner, nothing kept
    const first = FrameScanner.of(undefined);
    expect(first.scan(Buffer.concat([packet, packet]), 100)).toBeUndefined();
    expect(first.kept()).toBeUndefined();
    // a chunk ending inside a packet: a scanner of its own, which the shared one does not change
    const cut = FrameScanner.of(undefined);
    expect(cut.scan(packet.subarray(0, 5), 100)).toBeUndefined();
    const kept = cut.kept();
    expect(kept).toBeDefined();
    expect(kept).not.toBe(cut);
    const other = FrameScanner.of(undefined);
    expect(other.scan(Buffer.from([0x30]), 100)).toBeUndefined();
    // the rest of the packet, then one too large: found from the kept state
    const resumed = FrameScanner.of(kept);
    expect(resumed).toBe(kept);
    expect(resumed.scan(packet.subarray(5), 100)).toBeUndefined();
    expect(resumed.kept()).toBeUndefined();
    expect(FrameScanner.of(undefined).scan(publish(200).subarray(0, 3), 100)).toBe(
      'packet-too-large',
    );
  });
});

import { describe, expect, it } from 'vitest';
import { decodeRetained, encodeRetained } from '../../../src/cluster/retained-codec.js';
import type { BrokerMessage } from '../../../src/mqtt/message.js';

const full: BrokerMessage = {
  topic: 'devices/d1/state',
  payload: Buffer.from([0, 255, 10, 13]),
  qos: 2,
  retain: true,
  properties: {
    payloadFormatIndicator: false,
    contentType: 'application/octet-stream',
    responseTopic: 'replies/d1',
    correlationData: Buffer.from('c-1'),
    userProperties: { site: 'north', tags: ['a', 'b'] },
  },
  expiresAt: 1_900_000_000_000,
  origin: { clientId: 'd1', username: 'alice' },
};

function roundTrip(message: BrokerMessage): BrokerMessage {
  const { value, metadata } = encodeRetained(message);
  return decodeRetained(message.topic, value, metadata);
}

describe('retained codec', () => {
  it('keeps the payload as the record value, byte for byte', () => {
    expect(encodeRetained(full).value).toBe(full.payload);
  });

  it('round-trips a retained message with every property and its expiry', () => {
    expect(roundTrip(full)).toEqual(full);
  });

  it('round-trips a bare message (no properties, no expiry, no username)', () => {
    const bare: BrokerMessage = {
      ...full,
      qos: 0,
      properties: {},
      expiresAt: undefined,
      origin: { clientId: 'd2', username: undefined },
    };
    expect(roundTrip(bare)).toEqual(bare);
  });

  it('refuses metadata it did not write, saying why', () => {
    const payload = Buffer.from('x');
    expect(() => decodeRetained('t', payload, 'not json')).toThrow(SyntaxError);
    expect(() => decodeRetained('t', payload, '{"v":2}')).toThrow(
      'no mqtt-retained metadata of version 1',
    );
    expect(() => decodeRetained('t', payload, '{"v":1,"qos":3,"clientId":""}')).toThrow(
      'qos or clientId missing or invalid',
    );
  });
});

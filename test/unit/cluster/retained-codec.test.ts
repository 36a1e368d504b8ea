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

describe('retained codec', () => {
  it('round-trips a retained message with binary payload, every property and its expiry', () => {
    expect(decodeRetained(full.topic, encodeRetained(full))).toEqual(full);
  });

  it('round-trips a bare message (no properties, no expiry, no username)', () => {
    const bare: BrokerMessage = {
      ...full,
      qos: 0,
      properties: {},
      expiresAt: undefined,
      origin: { clientId: 'd2', username: undefined },
    };
    expect(decodeRetained(bare.topic, encodeRetained(bare))).toEqual(bare);
  });

  it('refuses what it did not write, saying why', () => {
    expect(() => decodeRetained('t', Buffer.from('not json'))).toThrow(SyntaxError);
    expect(() => decodeRetained('t', Buffer.from('{"v":2}'))).toThrow(
      'not a retained message of version 1',
    );
    expect(() =>
      decodeRetained('t', Buffer.from('{"v":1,"qos":3,"payload":"","clientId":""}')),
    ).toThrow('qos, payload or clientId missing or invalid');
  });
});

import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import type { DownlinkMessage, DownlinkResult } from '../../../src/rules/downlink-types.js';
import { downlinkOf, kafkaRecord, yaml } from './fixtures.js';

/** A router of one rule reading iot.commands with the given `to` and optional `value`. */
function one(to: string, value?: string) {
  return downlinkOf(
    yaml(
      'downlink:',
      '  - name: r',
      '    from: iot.commands',
      `    to: ${to}`,
      ...(value === undefined ? [] : [`    value: ${value}`]),
    ),
    { 'cmd.avsc': JSON.stringify(SCHEMA) },
  );
}

const SCHEMA = {
  type: 'record',
  name: 'Command',
  fields: [
    { name: 'deviceId', type: 'string' },
    { name: 'cmd', type: 'string' },
    { name: 'blob', type: 'bytes', default: '' },
  ],
};
const COMMAND = avro.Type.forSchema(SCHEMA as avro.Schema);

function message(results: DownlinkResult[]): DownlinkMessage {
  const [result] = results;
  if (results.length !== 1 || result?.kind !== 'message') {
    throw new Error(`expected one message, got ${JSON.stringify(results)}`);
  }
  return result.message;
}

function errorOf(results: DownlinkResult[]): string {
  const [result] = results;
  if (results.length !== 1 || result?.kind !== 'invalid') {
    throw new Error(`expected one invalid result, got ${JSON.stringify(results)}`);
  }
  return result.error;
}

describe('DownlinkRouter.route: topics from templates', () => {
  it('fills in the key, headers, value fields, topic, partition and offset', () => {
    const router = one(
      '{ topic: "d/{key}/{header.device-id}/{value.target.zone}/{topic}/{partition}/{offset}" }',
    );
    const record = kafkaRecord({
      partition: 3,
      offset: '17',
      headers: { 'device-id': Buffer.from('hw-9') },
      value: Buffer.from('{"target": {"zone": 4}}'),
    });
    expect(message(router.route(record))).toEqual({
      topic: 'd/d1/hw-9/4/iot.commands/3/17',
      payload: record.value,
      qos: 1,
      retain: false,
      expiresAt: undefined,
      properties: {},
    });
  });

  it('uses the last value of a repeated header', () => {
    const router = one('{ topic: "d/{header.h}" }');
    const record = kafkaRecord({ headers: { h: [Buffer.from('a'), 'b'] } });
    expect(message(router.route(record)).topic).toBe('d/b');
  });

  it.each([
    ['d/{key}', { key: null }, 'the record has no key'],
    ['d/{key}', { key: Buffer.from([0xff]) }, 'the record key is not UTF-8'],
    ['d/{header.x}', {}, 'header "x" is missing'],
    ['d/{value.id}', {}, 'value field "id" is missing'],
    ['d/{value.id}', { value: Buffer.from('nope') }, 'the record value is not valid JSON: '],
    ['d/{value.id}', { value: null }, 'the record has no value (tombstone)'],
    ['{header.t}', { headers: { t: '' } }, 'the MQTT topic "" is empty'],
    ['d/{header.t}', { headers: { t: 'a/#' } }, 'the MQTT topic "d/a/#" contains a wildcard'],
    [
      '{header.t}',
      { headers: { t: '$SYS/broker/uptime' } },
      'the MQTT topic "$SYS/broker/uptime" is in $SYS/, where only the bridge itself publishes',
    ],
  ])('makes %s with %o invalid: %s', (topic, overrides, error) => {
    const results = one(`{ topic: "${topic}" }`).route(kafkaRecord(overrides));
    expect(errorOf(results)).toContain(error);
    expect(results[0]?.rule).toBe('r');
  });
});

describe('DownlinkRouter.route: QoS, retain and MQTT 5 properties', () => {
  it('takes QoS and retain from the rule', () => {
    const msg = message(one('{ topic: t, qos: 0, retain: true }').route(kafkaRecord()));
    expect([msg.qos, msg.retain]).toEqual([0, true]);
  });

  it('sets content type, response topic, correlation data and user properties', () => {
    const router = one(
      [
        '{ topic: t, contentType: "application/{header.kind}",',
        'responseTopic: "replies/{key}", correlationData: header.corr,',
        'userProperties: [trace, multi, absent] }',
      ].join(' '),
    );
    const record = kafkaRecord({
      headers: {
        kind: 'json',
        corr: Buffer.from([1, 2, 255]),
        trace: Buffer.from('t-1'),
        multi: ['a', Buffer.from('b')],
        other: 'not listed',
      },
    });
    expect(message(router.route(record)).properties).toEqual({
      contentType: 'application/json',
      responseTopic: 'replies/d1',
      correlationData: Buffer.from([1, 2, 255]),
      userProperties: { trace: 't-1', multi: ['a', 'b'] },
    });
  });

  it('copies every UTF-8 header with userProperties: all', () => {
    const router = one('{ topic: t, userProperties: all }');
    const record = kafkaRecord({
      headers: { a: 'x', bin: Buffer.from([0xff, 0xfe]), gone: undefined },
    });
    expect(message(router.route(record)).properties).toEqual({ userProperties: { a: 'x' } });
  });

  it('refuses a listed header that is not UTF-8', () => {
    const router = one('{ topic: t, userProperties: [bin] }');
    const record = kafkaRecord({ headers: { bin: Buffer.from([0xff]) } });
    expect(errorOf(router.route(record))).toBe('header "bin" is not UTF-8');
  });

  it('leaves out correlation data whose header is absent', () => {
    const router = one('{ topic: t, correlationData: header.corr }');
    expect(message(router.route(kafkaRecord())).properties).toEqual({});
  });

  it('refuses a response topic with a wildcard', () => {
    const router = one('{ topic: t, responseTopic: "{header.r}" }');
    const record = kafkaRecord({ headers: { r: 'a/+' } });
    expect(errorOf(router.route(record))).toBe(
      'the MQTT response topic "a/+" contains a wildcard ("+" or "#")',
    );
  });
});

describe('DownlinkRouter.route: expiry', () => {
  const timestamp = '1700000000000';

  it.each([
    ['{ ttl: 30 }', {}, 1_700_000_030_000],
    ['{ ttl: 1.5 }', {}, 1_700_000_001_500],
    ['{ ttl: header.ttl }', { headers: { ttl: '60' } }, 1_700_000_060_000],
    ['{ ttl: value.ttl }', { value: Buffer.from('{"ttl": 5}') }, 1_700_000_005_000],
    ['{ at: header.exp }', { headers: { exp: '1700000099000' } }, 1_700_000_099_000],
    [
      '{ at: header.exp }',
      { headers: { exp: '2024-06-01T12:00:00Z' } },
      Date.parse('2024-06-01T12:00:00Z'),
    ],
    ['{ at: value.exp }', { value: Buffer.from('{"exp": 1800000000000}') }, 1_800_000_000_000],
    ['{ ttl: header.ttl }', {}, undefined],
    ['{ at: value.exp }', { value: Buffer.from('{"exp": null}') }, undefined],
  ])('%s with %o expires at %s', (expiry, overrides, expected) => {
    const router = one(`{ topic: t, expiry: ${expiry} }`);
    const msg = message(router.route(kafkaRecord({ timestamp, ...overrides })));
    expect(msg.expiresAt).toBe(expected);
  });

  it.each([
    [
      '{ ttl: header.ttl }',
      { headers: { ttl: 'soon' } },
      'expiry ttl header.ttl is "soon": expected a number of seconds',
    ],
    [
      '{ ttl: value.ttl }',
      { value: Buffer.from('{"ttl": -1}') },
      'expiry ttl value.ttl is -1: expected a number of seconds',
    ],
    [
      '{ at: header.exp }',
      { headers: { exp: 'tomorrow' } },
      'expiry at header.exp is "tomorrow": expected epoch milliseconds or an ISO 8601 date',
    ],
    ['{ at: value.exp }', { value: Buffer.from('x') }, 'the record value is not valid JSON: '],
  ])('%s with %o is invalid', (expiry, overrides, error) => {
    const router = one(`{ topic: t, expiry: ${expiry} }`);
    expect(errorOf(router.route(kafkaRecord({ timestamp, ...overrides })))).toContain(error);
  });
});

describe('DownlinkRouter.route: values', () => {
  it('passes raw values through and does not mark them UTF-8', () => {
    const value = Buffer.from([0, 1, 2]);
    const msg = message(one('{ topic: t }').route(kafkaRecord({ value })));
    expect(msg.payload).toEqual(value);
    expect(msg.properties).toEqual({});
  });

  it('validates JSON values, keeps their bytes, and marks them UTF-8', () => {
    const value = Buffer.from('{ "cmd": "reboot" }');
    const msg = message(one('{ topic: t }', '{ format: json }').route(kafkaRecord({ value })));
    expect(msg.payload).toBe(value);
    expect(msg.properties).toEqual({ payloadFormatIndicator: true });
    const bad = one('{ topic: t }', '{ format: json }').route(
      kafkaRecord({ value: Buffer.from('{') }),
    );
    expect(errorOf(bad)).toMatch(/^the record value is not valid JSON: /);
  });

  it('projects JSON fields', () => {
    const router = one('{ topic: t }', '{ format: json, fields: { c: cmd, at: meta.at } }');
    const value = Buffer.from('{"cmd": "reboot", "meta": {"at": 5}, "secret": 1}');
    expect(message(router.route(kafkaRecord({ value }))).payload.toString()).toBe(
      '{"c":"reboot","at":5}',
    );
    expect(errorOf(router.route(kafkaRecord({ value: Buffer.from('[1]') })))).toBe(
      'the record value is not a JSON object, so "fields" cannot pick from it',
    );
  });

  it('decodes Avro to JSON, bytes as base64, and serves value fields from it', () => {
    const router = one('{ topic: "d/{value.deviceId}" }', '{ format: avro, schema: cmd.avsc }');
    const value = COMMAND.toBuffer({ deviceId: 'd7', cmd: 'open', blob: Buffer.from([1, 2]) });
    const msg = message(router.route(kafkaRecord({ value })));
    expect(msg.topic).toBe('d/d7');
    expect(JSON.parse(msg.payload.toString())).toEqual({
      deviceId: 'd7',
      cmd: 'open',
      blob: 'AQI=',
    });
    expect(msg.properties.payloadFormatIndicator).toBe(true);
    expect(errorOf(router.route(kafkaRecord({ value: Buffer.from([2, 0x61]) })))).toMatch(
      /^the record value is not Avro of the schema: /,
    );
  });

  it('strips the Confluent wire format, checking the schema id unless any', () => {
    const body = COMMAND.toBuffer({ deviceId: 'd7', cmd: 'open' });
    const framed = (id: number) => Buffer.concat([Buffer.from([0, 0, 0, 0, id]), body]);
    const fixed = one(
      '{ topic: t }',
      '{ format: avro, schema: cmd.avsc, schemaId: 7, fields: [cmd] }',
    );
    expect(message(fixed.route(kafkaRecord({ value: framed(7) }))).payload.toString()).toBe(
      '{"cmd":"open"}',
    );
    expect(errorOf(fixed.route(kafkaRecord({ value: framed(8) })))).toBe(
      'the record value has schema id 8, expected 7',
    );
    expect(errorOf(fixed.route(kafkaRecord({ value: body })))).toBe(
      'the record value is not in the Confluent wire format (a zero byte, then a 4-byte schema id)',
    );
    const any = one('{ topic: t }', '{ format: avro, schema: cmd.avsc, schemaId: any }');
    expect(
      JSON.parse(message(any.route(kafkaRecord({ value: framed(8) }))).payload.toString()),
    ).toEqual({
      deviceId: 'd7',
      cmd: 'open',
      blob: '',
    });
  });

  it('turns a tombstone into an empty payload, whatever the format', () => {
    for (const value of [
      undefined,
      '{ format: json }',
      '{ format: avro, schema: cmd.avsc, schemaId: 1 }',
    ]) {
      const router = one('{ topic: "config/{key}", retain: true }', value);
      const msg = message(router.route(kafkaRecord({ value: null })));
      expect(msg).toEqual({
        topic: 'config/d1',
        payload: Buffer.alloc(0),
        qos: 1,
        retain: true,
        expiresAt: undefined,
        properties: {},
      });
    }
  });
});

describe('DownlinkRouter.route: which rules', () => {
  const router = downlinkOf(
    yaml(
      'deadLetter: { topic: iot.dead }',
      'downlink:',
      '  - { name: exact, from: iot.commands, to: { topic: "a/{key}" } }',
      '  - { name: pattern, from: { pattern: \'iot\\.(commands|config)\' }, to: { topic: "b/{key}" } }',
      '  - { name: needs-json, from: iot.commands, to: { topic: c }, value: { format: json } }',
    ),
  );

  it('gives one result per matching rule, in rule order', () => {
    const results = router.route(kafkaRecord({ value: Buffer.from('not json') }));
    expect(results.map((r) => [r.rule, r.kind])).toEqual([
      ['exact', 'message'],
      ['pattern', 'message'],
      ['needs-json', 'invalid'],
    ]);
  });

  it('matches patterns against whole topic names', () => {
    expect(router.route(kafkaRecord({ topic: 'iot.config' })).map((r) => r.rule)).toEqual([
      'pattern',
    ]);
    expect(router.route(kafkaRecord({ topic: 'iot.configs' }))).toEqual([]);
    expect(router.route(kafkaRecord({ topic: 'x.iot.commands' }))).toEqual([]);
  });

  it('knows the dead-letter topic', () => {
    expect(router.deadLetterTopic).toBe('iot.dead');
    expect(one('{ topic: t }').deadLetterTopic).toBeUndefined();
  });
});

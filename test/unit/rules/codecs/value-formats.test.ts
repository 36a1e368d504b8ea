import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { mapped, mappingErrors, publish, routerOf, yaml } from '../fixtures.js';

const json = (payload: unknown) => Buffer.from(JSON.stringify(payload));

function jsonRule(...valueLines: string[]): string {
  return yaml(
    'uplink:',
    '  - name: t',
    '    from: devices/{deviceId}/telemetry',
    '    to: { topic: iot.telemetry, key: "{deviceId}" }',
    '    value:',
    '      format: json',
    ...valueLines,
  );
}

const TELEMETRY_SCHEMA = JSON.stringify({
  type: 'record',
  name: 'Telemetry',
  fields: [
    { name: 'device', type: 'string' },
    { name: 'temperature', type: 'double' },
    { name: 'unit', type: 'string', default: 'C' },
    { name: 'note', type: ['null', 'string'], default: null },
  ],
});
const TYPE = avro.Type.forSchema(JSON.parse(TELEMETRY_SCHEMA) as avro.Schema);

function avroRule(...valueLines: string[]): string {
  return yaml(
    'uplink:',
    '  - name: t',
    '    from: devices/{deviceId}/telemetry',
    '    to: { topic: iot.telemetry }',
    '    value:',
    '      format: avro',
    ...valueLines,
  );
}

const at = 'devices/d1/telemetry';

describe('value format json', () => {
  it('passes a valid JSON payload through byte for byte', () => {
    const payload = Buffer.from('{ "t" : 21.5 }');
    const [routed] = mapped(routerOf(jsonRule()).route(publish({ topic: at, payload })));
    expect(routed?.record.value).toBe(payload);
  });

  it.each([
    ['not JSON', Buffer.from('{"t":'), /^payload is not valid JSON: /],
    [
      'not UTF-8',
      Buffer.from([0x22, 0xff, 0x22]),
      /^payload is not valid JSON: payload is not UTF-8$/,
    ],
  ])('refuses a payload that is %s', (_, payload, error) => {
    const routing = routerOf(jsonRule()).route(publish({ topic: at, payload }));
    expect(routing.kind).toBe('invalid');
    if (routing.kind !== 'invalid') return;
    expect(routing.failures).toEqual([
      { rule: 't', error: expect.stringMatching(error) as string },
    ]);
    expect(routing.records).toEqual([]); // no deadLetter topic configured
  });

  it('keeps the listed fields, named after their last part', () => {
    const routing = routerOf(jsonRule('      fields: [t, meta.unit, missing]')).route(
      publish({ topic: at, payload: json({ t: 21.5, h: 40, meta: { unit: 'C' } }) }),
    );
    expect(JSON.parse(mapped(routing)[0]?.record.value.toString() ?? '')).toEqual({
      t: 21.5,
      unit: 'C',
    });
  });

  it('renames fields with a map, in the map order, including array elements', () => {
    const routing = routerOf(
      jsonRule('      fields:', '        first: readings.0', '        temperature: t'),
    ).route(publish({ topic: at, payload: json({ t: 21.5, readings: [7, 8] }) }));
    expect(mapped(routing)[0]?.record.value.toString()).toBe('{"first":7,"temperature":21.5}');
  });

  it('refuses to pick fields from a payload that is not an object', () => {
    const routing = routerOf(jsonRule('      fields: [t]')).route(
      publish({ topic: at, payload: json([1, 2]) }),
    );
    expect(routing).toMatchObject({
      kind: 'invalid',
      failures: [{ error: 'payload is not a JSON object, so "fields" cannot pick from it' }],
    });
  });

  it('wraps the payload in an envelope of publish metadata', () => {
    const routing = routerOf(
      jsonRule(
        '      envelope: [topic, clientId, username, qos, retain, timestamp, contentType, userProperties, captures]',
      ),
    ).route(
      publish({
        topic: at,
        payload: json({ t: 1 }),
        qos: 2,
        username: 'alice',
        contentType: 'application/json',
        userProperties: [
          ['a', '1'],
          ['a', '2'],
          ['b', '3'],
        ],
      }),
    );
    const [record] = mapped(routing);
    expect(JSON.parse(record?.record.value.toString() ?? '')).toEqual({
      topic: at,
      clientId: 'client-1',
      username: 'alice',
      qos: 2,
      retain: false,
      timestamp: record?.record.timestamp,
      contentType: 'application/json',
      userProperties: { a: ['1', '2'], b: '3' },
      captures: { deviceId: 'd1' },
      payload: { t: 1 },
    });
  });

  it('projects before wrapping; absent username and content type are null', () => {
    const routing = routerOf(
      jsonRule('      fields: [t]', '      envelope: [username, contentType]'),
    ).route(publish({ topic: at, payload: json({ t: 1, x: 2 }) }));
    expect(mapped(routing)[0]?.record.value.toString()).toBe(
      '{"username":null,"contentType":null,"payload":{"t":1}}',
    );
  });

  it.each([
    ['      fields: []', '7:15: expected at least one field'],
    ['      fields: [a, b.a]', '7:19: output field "a" is picked twice'],
    [
      '      fields: [a..b]',
      '7:16: invalid payload field "a..b" (names separated by ".", none empty)',
    ],
    ['      fields: { x: 1 }', '7:20: expected a string'],
    [
      '      envelope: [topic, clientid]',
      '7:25: unknown envelope field "clientid" (did you mean "clientId"?)',
    ],
    ['      envelope: [topic, topic]', '7:25: "topic" is listed twice'],
    ['      schema: x.avsc', '7:7: "schema" does not apply to format json'],
  ])('reports %s', (line, problem) => {
    expect(mappingErrors(jsonRule(line))).toEqual([`maps/m.yaml:${problem}`]);
  });
});

describe('value format avro', () => {
  it('encodes a JSON payload with the schema next to the mapping file, filling defaults', () => {
    const router = routerOf(avroRule('      schema: schemas/telemetry.avsc'), {
      'schemas/telemetry.avsc': TELEMETRY_SCHEMA,
    });
    const [routed] = mapped(
      router.route(publish({ topic: at, payload: json({ device: 'd1', temperature: 21.5 }) })),
    );
    expect(TYPE.fromBuffer(routed?.record.value ?? Buffer.alloc(0))).toEqual(
      TYPE.clone({ device: 'd1', temperature: 21.5, unit: 'C', note: null }),
    );
  });

  it('writes the Confluent wire format with a schema id', () => {
    const router = routerOf(avroRule('      schema: telemetry.avsc', '      schemaId: 258'), {
      'telemetry.avsc': TELEMETRY_SCHEMA,
    });
    const payload = json({ device: 'd1', temperature: 1, note: 'n' });
    const value = mapped(router.route(publish({ topic: at, payload })))[0]?.record.value;
    expect(value?.subarray(0, 5)).toEqual(Buffer.from([0, 0, 0, 1, 2]));
    expect(TYPE.fromBuffer(value?.subarray(5) ?? Buffer.alloc(0))).toMatchObject({ note: 'n' });
  });

  it('renames payload fields to schema fields first', () => {
    const router = routerOf(
      avroRule('      schema: t.avsc', '      fields: { device: id, temperature: t }'),
      { 't.avsc': TELEMETRY_SCHEMA },
    );
    const value = mapped(router.route(publish({ topic: at, payload: json({ id: 'x', t: 3 }) })))[0]
      ?.record.value;
    expect(TYPE.fromBuffer(value ?? Buffer.alloc(0))).toMatchObject({
      device: 'x',
      temperature: 3,
    });
  });

  it('refuses a payload that does not match the schema, naming the field', () => {
    const router = routerOf(avroRule('      schema: t.avsc'), { 't.avsc': TELEMETRY_SCHEMA });
    const routing = router.route(
      publish({ topic: at, payload: json({ device: 'd1', temperature: 'warm' }) }),
    );
    expect(routing).toMatchObject({
      kind: 'invalid',
      failures: [
        {
          rule: 't',
          error:
            'payload does not match the Avro schema: field "temperature": expected double, got "warm"',
        },
      ],
    });
  });

  it.each([
    [[], '6:7: missing required field "schema" (the .avsc file, relative to this file)'],
    [['      schema: nope.avsc'], '7:15: Avro schema "nope.avsc" (maps/nope.avsc): no such file'],
    [
      ['      schema: bad.avsc'],
      expect.stringMatching(
        /^maps\/m\.yaml:7:15: Avro schema "bad\.avsc" \(maps\/bad\.avsc\): not JSON: /,
      ) as string,
    ],
    [
      ['      schema: wrong.avsc'],
      expect.stringMatching(
        /^maps\/m\.yaml:7:15: Avro schema "wrong\.avsc" \(maps\/wrong\.avsc\): not a valid Avro schema: /,
      ) as string,
    ],
    [
      ['      schema: t.avsc', '      schemaId: -1'],
      '8:17: expected a schema registry id (an integer from 0 to 4294967295)',
    ],
    [
      ['      schema: t.avsc', '      envelope: [topic]'],
      '8:7: "envelope" does not apply to format avro',
    ],
  ])('reports schema problems at the field that names them: %j', (lines, problem) => {
    const errors = mappingErrors(avroRule(...lines), {
      't.avsc': TELEMETRY_SCHEMA,
      'bad.avsc': '{ "type": ',
      'wrong.avsc':
        '{ "type": "record", "name": "X", "fields": [{ "name": "a", "type": "nope" }] }',
    });
    expect(errors).toEqual([typeof problem === 'string' ? `maps/m.yaml:${problem}` : problem]);
  });
});

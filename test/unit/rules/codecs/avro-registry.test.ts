import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import {
  RegistryDecoder,
  WriterSchemas,
  type WriterSchemaSource,
} from '../../../../src/rules/codecs/avro-registry.js';
import type { ValueSpec } from '../../../../src/rules/codecs/value.js';
import { PayloadError } from '../../../../src/rules/errors.js';
import type { Router } from '../../../../src/rules/router.js';
import type { UplinkRule } from '../../../../src/rules/rule.js';
import {
  downlinkOf,
  kafkaRecord,
  mapped,
  mappingErrors,
  publish,
  routerOf,
  yaml,
} from '../fixtures.js';

const READING = {
  type: 'record',
  name: 'Reading',
  namespace: 'iot',
  fields: [{ name: 't', type: 'double' }],
};
const FILES = { 'r.avsc': JSON.stringify(READING), 'plain.avsc': '"string"' };
const POSITION = { file: 'maps/m.yaml', line: 1, column: 1 };

function uplink(value: string, topic = 'iot.readings'): string {
  return yaml(
    'uplink:',
    '  - name: r',
    '    from: devices/{id}/t',
    `    to: { topic: ${topic} }`,
    `    value: ${value}`,
  );
}

/** The value spec of the only uplink rule (Router keeps its rules private). */
function valueOf(router: Router): Extract<ValueSpec, { format: 'avro' }> {
  const [rule] = (router as unknown as { rules: UplinkRule[] }).rules;
  if (rule?.value.format !== 'avro') throw new Error('not an avro rule');
  return rule.value;
}

/** A value in the Confluent wire format. */
function framed(id: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(id, 1);
  return Buffer.concat([header, body]);
}

describe('uplink subject: mapping syntax', () => {
  it.each([
    ['readings-v1', { kind: 'name', name: 'readings-v1' }, 'readings-v1'],
    [
      '{ strategy: topic-name }',
      { kind: 'strategy', strategy: 'topic-name' },
      'iot.readings-value',
    ],
    ['{ strategy: record-name }', { kind: 'strategy', strategy: 'record-name' }, 'iot.Reading'],
    [
      '{ strategy: topic-record-name }',
      { kind: 'strategy', strategy: 'topic-record-name' },
      'iot.readings-iot.Reading',
    ],
  ])('subject: %s', (subject, spec, name) => {
    const value = valueOf(
      routerOf(uplink(`{ format: avro, schema: r.avsc, subject: ${subject} }`), FILES),
    );
    expect(value.registry?.spec).toEqual(spec);
    expect(value.registry?.subjectFor('iot.readings')).toEqual({ subject: name });
    expect(value.registry?.schema).toBe(JSON.stringify(READING));
    expect(value.registry?.position).toEqual({ file: 'maps/m.yaml', line: 5, column: 53 });
  });

  it('reports unusable subjects at their position', () => {
    const errors = (value: string, files: Record<string, string> = FILES) =>
      mappingErrors(uplink(value), files);
    expect(errors('{ format: avro, schema: r.avsc, subject: { strategy: topic-nam } }')).toEqual([
      'maps/m.yaml:5:65: unknown subject strategy "topic-nam" (did you mean "topic-name"?)',
    ]);
    expect(errors('{ format: avro, schema: r.avsc, subject: { strategi: x } }')).toEqual([
      'maps/m.yaml:5:53: missing required field "strategy"',
      'maps/m.yaml:5:55: unknown field "strategi" (did you mean "strategy"?)',
    ]);
    expect(errors('{ format: avro, schema: r.avsc, subject: "" }')).toEqual([
      'maps/m.yaml:5:53: a subject name must not be empty',
    ]);
    expect(errors('{ format: avro, schema: r.avsc, subject: [a] }')).toEqual([
      'maps/m.yaml:5:53: expected a subject name or { strategy: topic-name }',
    ]);
    expect(
      errors('{ format: avro, schema: plain.avsc, subject: { strategy: record-name } }'),
    ).toEqual([
      'maps/m.yaml:5:57: subject strategy record-name needs a named schema (a record, enum or fixed)',
    ]);
    expect(errors('{ format: avro, schema: r.avsc, schemaId: 1, subject: s }')).toEqual([
      'maps/m.yaml:5:57: write either "schemaId" (an id registered beforehand) or "subject" (registered by the bridge), not both',
    ]);
    expect(errors('{ format: json, subject: s }')).toEqual([
      'maps/m.yaml:5:28: "subject" does not apply to format json',
    ]);
  });

  it('a topic-name subject needs a fixed topic: known when the registry is prepared', () => {
    const value = valueOf(
      routerOf(
        uplink('{ format: avro, schema: r.avsc, subject: { strategy: topic-name } }', "'iot.{id}'"),
        FILES,
      ),
    );
    expect(value.registry?.subjectFor(undefined)).toEqual({
      error:
        "subject strategy topic-name needs a fixed Kafka topic, and this rule's topic depends on the publish: name the subject instead",
    });
    expect(value.registry?.subjectFor(undefined)).toEqual(value.registry?.subjectFor(undefined));
  });
});

describe('uplink subject: encoding', () => {
  it('frames values with the registered id; dead-letters them while there is none', () => {
    const router = routerOf(uplink('{ format: avro, schema: r.avsc, subject: s }'), FILES);
    const reading = publish({ topic: 'devices/d1/t', payload: Buffer.from('{"t":1.5}') });
    expect(router.route(reading)).toEqual({
      kind: 'invalid',
      failures: [
        {
          rule: 'r',
          error:
            'the schema is not registered: no schema registry was asked for its id (set schemaRegistry.url)',
        },
      ],
      records: [],
    });
    valueOf(router).registry?.registered('s', 0x01020304);
    const [routed] = mapped(router.route(reading));
    const body = avro.Type.forSchema(READING as avro.Schema).toBuffer({ t: 1.5 });
    expect(routed?.record.value).toEqual(framed(0x01020304, body));
  });
});

/** A registry stand-in counting the calls. */
function source(schemas: Record<number, unknown>, type = 'AVRO') {
  const calls: number[] = [];
  const fake: WriterSchemaSource & { calls: number[]; down: boolean } = {
    url: 'http://registry',
    calls,
    down: false,
    schemaById(id) {
      calls.push(id);
      if (fake.down) return Promise.reject(new Error('connect ECONNREFUSED'));
      const schema = schemas[id];
      if (schema === undefined) {
        return Promise.reject(Object.assign(new Error('not found'), { status: 404 }));
      }
      return Promise.resolve({ schema: JSON.stringify(schema), schemaType: type, references: [] });
    },
  };
  return fake;
}

const COMMAND_V1 = { type: 'record', name: 'Command', fields: [{ name: 'cmd', type: 'string' }] };
const COMMAND_V2 = {
  type: 'record',
  name: 'Command',
  fields: [
    { name: 'cmd', type: 'string' },
    { name: 'priority', type: 'int', default: 5 },
  ],
};
const V1 = avro.Type.forSchema(COMMAND_V1 as avro.Schema);
const V2 = avro.Type.forSchema(COMMAND_V2 as avro.Schema);

describe('RegistryDecoder', () => {
  it('decodes with the writer schema of the id, resolved to the reader schema', async () => {
    const registry = source({ 3: COMMAND_V1 });
    const writers = new WriterSchemas(registry);
    const asWritten = new RegistryDecoder(POSITION);
    const asRead = new RegistryDecoder(POSITION, V2);
    asWritten.bind(writers);
    asRead.bind(writers);
    const value = framed(3, V1.toBuffer({ cmd: 'go' }));
    expect(() => asWritten.decode(value)).toThrow(
      new PayloadError('writer schema id 3 has not been fetched from the schema registry'),
    );
    await Promise.all([asWritten.prepare(value), asRead.prepare(value)]);
    expect(registry.calls).toEqual([3]);
    expect(asWritten.prepare(value)).toBeUndefined();
    expect(asWritten.decode(value)).toEqual({ cmd: 'go' });
    expect(asRead.decode(value)).toEqual({ cmd: 'go', priority: 5 });
  });

  it('says why a value cannot be decoded', async () => {
    const writers = new WriterSchemas(
      source({ 1: COMMAND_V1, 2: { type: 'record', name: 'Other', fields: [] } }),
    );
    const decoder = new RegistryDecoder(POSITION, V2);
    expect(() => decoder.decode(framed(1, Buffer.alloc(0)))).toThrow(
      'no schema registry to fetch writer schema id 1 from (set schemaRegistry.url)',
    );
    decoder.bind(writers);
    expect(() => decoder.decode(Buffer.from('{"cmd":"go"}'))).toThrow(
      'the record value is not in the Confluent wire format (a zero byte, then a 4-byte schema id)',
    );
    expect(decoder.prepare(Buffer.from('{}'))).toBeUndefined();
    expect(decoder.prepare(null)).toBeUndefined();
    await decoder.prepare(framed(1, Buffer.alloc(0)));
    expect(() => decoder.decode(framed(1, Buffer.from([0x80])))).toThrow(
      /^the record value is not Avro of writer schema id 1: /,
    );
    await decoder.prepare(framed(2, Buffer.alloc(0)));
    expect(() => decoder.decode(framed(2, Buffer.alloc(0)))).toThrow(
      /^writer schema id 2 cannot be read with the rule's schema: /,
    );
  });

  it('remembers a missing id for a while, and nothing after a failed call', async () => {
    let now = 0;
    const registry = source({});
    const writers = new WriterSchemas(registry, { missingRetryMs: 1_000, now: () => now });
    const decoder = new RegistryDecoder(POSITION);
    decoder.bind(writers);
    const value = framed(9, Buffer.alloc(0));
    await decoder.prepare(value);
    expect(() => decoder.decode(value)).toThrow(
      'schema id 9 is not in the schema registry http://registry',
    );
    now = 999;
    expect(decoder.prepare(value)).toBeUndefined();
    now = 1_000;
    registry.down = true;
    await expect(decoder.prepare(value)).rejects.toThrow('connect ECONNREFUSED');
    expect(registry.calls).toEqual([9, 9]);
    const again = decoder.prepare(value);
    expect(again).toBeInstanceOf(Promise);
    await expect(again).rejects.toThrow('connect ECONNREFUSED');
  });

  it('refuses a writer schema that is not Avro', async () => {
    const writers = new WriterSchemas(source({ 4: COMMAND_V1 }, 'PROTOBUF'));
    const decoder = new RegistryDecoder(POSITION);
    decoder.bind(writers);
    const value = framed(4, Buffer.alloc(0));
    await decoder.prepare(value);
    expect(() => decoder.decode(value)).toThrow(
      'schema id 4 (schema registry http://registry) is PROTOBUF, not Avro',
    );
  });
});

describe('downlink schemaId: registry', () => {
  const rules = (...values: string[]) =>
    yaml(
      'downlink:',
      ...values.flatMap((value, index) => [
        `  - name: r${index}`,
        '    from: iot.commands',
        `    to: { topic: 'devices/{key}/c${index}' }`,
        `    value: ${value}`,
      ]),
    );

  it('takes an optional reader schema; other values are reported', () => {
    const router = downlinkOf(
      rules(
        '{ format: avro, schemaId: registry }',
        '{ format: avro, schemaId: registry, schema: v2.avsc, fields: [cmd] }',
        '{ format: json }',
      ),
      { 'v2.avsc': JSON.stringify(COMMAND_V2) },
    );
    const decoders = router.registryDecoders();
    expect(decoders.map((decoder) => [decoder.reader?.name, decoder.position])).toEqual([
      [undefined, { file: 'maps/m.yaml', line: 5, column: 38 }],
      ['Command', { file: 'maps/m.yaml', line: 9, column: 38 }],
    ]);
    expect(
      mappingErrors(rules('{ format: avro, schemaId: registri }', '{ format: avro, schemaId: 1 }')),
    ).toEqual([
      // not knowing what was meant, both are said
      'maps/m.yaml:5:12: missing required field "schema" (the .avsc file, relative to this file), or schemaId: registry',
      'maps/m.yaml:5:38: expected a schema registry id (an integer), "any" or "registry"',
      'maps/m.yaml:9:12: missing required field "schema" (the .avsc file, relative to this file), or schemaId: registry',
    ]);
  });

  it('prepare() waits for writer schemas only when a rule of the topic needs one', async () => {
    const router = downlinkOf(rules('{ format: avro, schemaId: registry, fields: [cmd] }'));
    const registry = source({ 5: COMMAND_V1 });
    for (const decoder of router.registryDecoders()) decoder.bind(new WriterSchemas(registry));
    const record = kafkaRecord({ value: framed(5, V1.toBuffer({ cmd: 'stop' })) });
    expect(router.prepare({ ...record, topic: 'other' })).toBeUndefined();
    expect(router.prepare({ ...record, value: null })).toBeUndefined();
    await router.prepare(record);
    expect(router.prepare(record)).toBeUndefined();
    const [result] = router.route(record);
    expect(result?.kind === 'message' && result.message.payload.toString()).toBe('{"cmd":"stop"}');
    expect(registry.calls).toEqual([5]);
  });
});

import { describe, expect, it, onTestFinished } from 'vitest';
import { AvroSchemas } from '../../../src/rules/codecs/avro.js';
import { MappingError } from '../../../src/rules/errors.js';
import { compileMappings, type Mappings } from '../../../src/rules/load.js';
import { SchemaRegistryClient } from '../../../src/schema-registry/client.js';
import {
  SchemaRegistry,
  prepareRegistry,
  registryIssues,
} from '../../../src/schema-registry/prepare.js';
import { mapped, publish, yaml } from '../rules/fixtures.js';
import { fakeRegistry, httpStub } from './http-stub.js';

const READING = JSON.stringify({
  type: 'record',
  name: 'Reading',
  fields: [{ name: 't', type: 'double' }],
});

function mappingsOf(text: string): Mappings {
  const schemas = new AvroSchemas(() => READING);
  return compileMappings([{ file: 'maps/m.yaml', text }], schemas);
}

function registryAt(url: string): SchemaRegistry {
  const registry = new SchemaRegistry(new SchemaRegistryClient({ url }));
  onTestFinished(() => {
    registry.close();
  });
  return registry;
}

async function issuesOf(promise: Promise<void>): Promise<string[]> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(MappingError);
  return (error as MappingError).message.split('\n');
}

const TEXT = yaml(
  'uplink:',
  '  - name: a',
  '    from: a/+',
  '    to: { topic: iot.a }',
  '    value: { format: avro, schema: r.avsc, subject: { strategy: topic-name } }',
  '  - name: b',
  '    from: b/+',
  '    to: { topic: iot.b }',
  '    value: { format: avro, schema: r.avsc, subject: shared }',
  '  - name: c',
  '    from: c/+',
  '    to: { topic: iot.c }',
  '    value: { format: avro, schema: r.avsc, subject: shared }',
  'downlink:',
  '  - name: d',
  '    from: iot.commands',
  "    to: { topic: 'devices/{key}/c' }",
  '    value: { format: avro, schemaId: registry }',
);

describe('prepareRegistry', () => {
  it('registers each subject once and frames values with its id', async () => {
    const registry = await fakeRegistry();
    const mappings = mappingsOf(TEXT);
    await prepareRegistry(mappings, registryAt(registry.url));
    const posts = registry.requests.map(({ url }) => url).sort();
    expect(posts).toEqual([
      '/subjects/iot.a-value',
      '/subjects/iot.a-value/versions',
      '/subjects/shared',
      '/subjects/shared/versions',
    ]);
    const [record] = mapped(
      mappings.uplink.route(publish({ topic: 'c/1', payload: Buffer.from('{"t":2}') })),
    );
    expect(record?.record.value.subarray(0, 5)).toEqual(Buffer.from([0, 0, 0, 0, 1]));
    expect(mappings.downlink.registryDecoders().every((decoder) => decoder.bound)).toBe(true);
  });

  it('refuses mappings that need a registry when none is configured, at each place', async () => {
    expect(await issuesOf(prepareRegistry(mappingsOf(TEXT), undefined))).toEqual([
      'maps/m.yaml:5:53: needs a schema registry: set schemaRegistry.url (env BRIDGE_SCHEMA_REGISTRY_URL)',
      'maps/m.yaml:9:53: needs a schema registry: set schemaRegistry.url (env BRIDGE_SCHEMA_REGISTRY_URL)',
      'maps/m.yaml:13:53: needs a schema registry: set schemaRegistry.url (env BRIDGE_SCHEMA_REGISTRY_URL)',
      'maps/m.yaml:18:38: schemaId: registry needs a schema registry: set schemaRegistry.url (env BRIDGE_SCHEMA_REGISTRY_URL)',
    ]);
    // mappings without registry fields need none
    await prepareRegistry(
      mappingsOf(yaml('uplink:', '  - { name: r, from: x, to: { topic: t } }')),
      undefined,
    );
  });

  it('names a topic-name subject of a rule whose topic depends on the publish', async () => {
    const mappings = mappingsOf(
      yaml(
        'uplink:',
        '  - name: a',
        '    from: a/{id}',
        "    to: { topic: 'iot.{id}' }",
        '    value: { format: avro, schema: r.avsc, subject: { strategy: topic-record-name } }',
      ),
    );
    const expected = [
      "maps/m.yaml:5:53: subject strategy topic-record-name needs a fixed Kafka topic, and this rule's topic depends on the publish: name the subject instead",
    ];
    expect(
      registryIssues(mappings).map(
        (issue) => `${issue.file}:${issue.line}:${issue.column}: ${issue.message}`,
      ),
    ).toEqual(expected);
    const registry = await fakeRegistry();
    expect(await issuesOf(prepareRegistry(mappings, registryAt(registry.url)))).toEqual(expected);
    expect(registry.requests).toEqual([]);
  });

  it('says what the registry answered, at the subject', async () => {
    const stub = await httpStub(({ url }) =>
      url.includes('iot.a')
        ? { status: 200, body: { id: 1 } }
        : { status: 401, body: { message: 'Unauthorized' } },
    );
    expect(await issuesOf(prepareRegistry(mappingsOf(TEXT), registryAt(stub.url)))).toEqual([
      `maps/m.yaml:9:53: subject "shared": schema registry ${stub.url}: POST /subjects/shared: 401 Unauthorized: Unauthorized`,
      `maps/m.yaml:13:53: subject "shared": schema registry ${stub.url}: POST /subjects/shared: 401 Unauthorized: Unauthorized`,
    ]);
  });
});

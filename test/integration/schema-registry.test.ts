import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { MappingError } from '../../src/rules/errors.js';
import { compileMappings, type Mappings } from '../../src/rules/load.js';
import { SchemaRegistryClient } from '../../src/schema-registry/client.js';
import { SchemaRegistry, prepareRegistry } from '../../src/schema-registry/prepare.js';
import { createTestCertificates, type TestCertificates } from '../support/certificates.js';
import { collect, connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { connectedProducer, createTopic, readRecords } from '../support/kafka-helpers.js';
import { startSchemaRegistry, type TestRegistry } from '../support/schema-registry.js';
import { waitFor } from '../support/wait-for.js';

/*
 * Avro values through a real Confluent-compatible schema registry: Apicurio Registry (its
 * /apis/ccompat/v7 API) started from Maven Central for this file. What a Java consumer or
 * producer would do is done by hand: fetch the schema by the id in the framing, register a
 * schema and frame a value with the id the registry gave.
 */

const READING = {
  type: 'record',
  name: 'Reading',
  namespace: 'iot',
  fields: [
    { name: 'device', type: 'string' },
    { name: 'temperature', type: 'double' },
  ],
};
/** What the back end writes downlink (writer schema, registered by the "producer"). */
const COMMAND_V1 = {
  type: 'record',
  name: 'Command',
  fields: [{ name: 'cmd', type: 'string' }],
};
/** What a rule reads it as: a newer version with a defaulted field. */
const COMMAND_V2 = {
  type: 'record',
  name: 'Command',
  fields: [
    { name: 'cmd', type: 'string' },
    { name: 'priority', type: 'int', default: 5 },
  ],
};

let registry: TestRegistry;
let folder: string;
let readingFile: string;
let commandFile: string;

beforeAll(async () => {
  registry = await startSchemaRegistry();
  folder = await mkdtemp(join(tmpdir(), 'registry-mappings-'));
  readingFile = join(folder, 'reading.avsc');
  commandFile = join(folder, 'command-v2.avsc');
  await writeFile(readingFile, JSON.stringify(READING, null, 2));
  await writeFile(commandFile, JSON.stringify(COMMAND_V2));
});

afterAll(async () => {
  await registry.stop();
  await rm(folder, { recursive: true, force: true });
});

/** Mappings of one file in `folder` (its `.avsc` files are found next to it). */
function compile(text: string): Mappings {
  return compileMappings([{ file: join(folder, 'm.yaml'), text }]);
}

/** A value in the Confluent wire format: zero, the id (4 bytes big-endian), Avro. */
function framed(id: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(id, 1);
  return Buffer.concat([header, body]);
}

/** Registers like a Java producer's serializer: the id under the subject. */
async function registerAsProducer(subject: string, schema: unknown): Promise<number> {
  const answer = await registry.call('POST', `/subjects/${subject}/versions`, {
    schema: JSON.stringify(schema),
  });
  expect(answer.status).toBe(200);
  return (answer.body as { id: number }).id;
}

/** Decodes like a Java consumer's deserializer: the writer schema fetched by the framed id. */
async function decodeAsConsumer(value: Buffer): Promise<{ id: number; value: unknown }> {
  expect(value.readUInt8(0)).toBe(0);
  const id = value.readUInt32BE(1);
  const answer = await registry.call('GET', `/schemas/ids/${id}`);
  expect(answer.status).toBe(200);
  const schema = JSON.parse((answer.body as { schema: string }).schema) as avro.Schema;
  return { id, value: avro.Type.forSchema(schema).fromBuffer(value.subarray(5)) };
}

const publishOf = (topic: string, payload: unknown) => ({
  topic,
  payload: Buffer.from(JSON.stringify(payload)),
  qos: 1 as const,
  retain: false,
  clientId: 'd1',
  username: undefined,
  userProperties: [],
});

describe('uplink: a rule names a subject, the bridge registers its schema', () => {
  it('registers on first use and frames values with the id the registry gave', async () => {
    const client = SchemaRegistryClient.fromConfig(
      loadConfig({ env: {}, overrides: { schemaRegistry: { url: registry.url } } }).schemaRegistry,
    );
    const bridgeRegistry = new SchemaRegistry(client as SchemaRegistryClient);
    const mappings = compile(`
uplink:
  - name: by-topic
    from: readings/+
    to: { topic: iot.readings }
    value: { format: avro, schema: reading.avsc, subject: { strategy: topic-name } }
  - name: named
    from: named/+
    to: { topic: iot.named }
    value: { format: avro, schema: reading.avsc, subject: readings-v1 }
  - name: by-record
    from: records/{deviceId}
    to: { topic: 'iot.{deviceId}' }
    value: { format: avro, schema: reading.avsc, subject: { strategy: record-name } }
`);
    expect((await registry.call('GET', '/subjects')).body).toEqual([]);
    await prepareRegistry(mappings, bridgeRegistry);
    const subjects = (await registry.call('GET', '/subjects')).body as string[];
    expect([...subjects].sort()).toEqual(['iot.Reading', 'iot.readings-value', 'readings-v1']);

    const latest = await registry.call('GET', '/subjects/iot.readings-value/versions/latest');
    const registeredId = (latest.body as { id: number }).id;
    const routing = mappings.uplink.route(
      publishOf('readings/d1', { device: 'd1', temperature: 21.5 }),
    );
    expect(routing.kind).toBe('mapped');
    const value = routing.kind === 'mapped' ? routing.records[0]?.record.value : undefined;
    const consumed = await decodeAsConsumer(value ?? Buffer.alloc(0));
    expect(consumed).toEqual({ id: registeredId, value: { device: 'd1', temperature: 21.5 } });

    // a reload registers nothing new: the same schema under the same subject has that id
    const again = compile(`
uplink:
  - name: by-topic
    from: readings/+
    to: { topic: iot.readings }
    value: { format: avro, schema: reading.avsc, subject: { strategy: topic-name } }
`);
    await prepareRegistry(again, new SchemaRegistry(client as SchemaRegistryClient));
    const versions = await registry.call('GET', '/subjects/iot.readings-value/versions');
    expect(versions.body).toEqual([1]);
    const reRouted = again.uplink.route(publishOf('readings/d2', { device: 'd2', temperature: 3 }));
    const reValue = reRouted.kind === 'mapped' ? reRouted.records[0]?.record.value : undefined;
    expect(reValue?.readUInt32BE(1)).toBe(registeredId);
    client?.close();
  });

  it('refuses mappings whose schema the registry refuses, at the subject', async () => {
    const client = new SchemaRegistryClient({ url: registry.url });
    // strict-value holds a schema that a field without a default cannot evolve from
    await registerAsProducer('strict-value', { ...READING, fields: [READING.fields[0]] });
    await registry.call('PUT', '/config/strict-value', { compatibility: 'BACKWARD' });
    const mappings = compile(`
uplink:
  - name: strict
    from: strict/+
    to: { topic: strict }
    value: { format: avro, schema: reading.avsc, subject: { strategy: topic-name } }
`);
    const error = await prepareRegistry(mappings, new SchemaRegistry(client)).catch(
      (thrown: unknown) => thrown,
    );
    client.close();
    expect(error).toBeInstanceOf(MappingError);
    expect((error as MappingError).message).toMatch(
      new RegExp(
        `^${join(folder, 'm.yaml')}:6:59: subject "strict-value": schema registry ${registry.url.replace(/[.]/g, '[.]')}: POST /subjects/strict-value/versions: 409`,
      ),
    );
  });
});

describe('downlink: schemaId: registry decodes with the writer schema of the framed id', () => {
  it('decodes a record a Java producer framed, with and without a reader schema', async () => {
    const mappings = compile(`
downlink:
  - name: as-written
    from: commands
    to: { topic: 'devices/{key}/cmd' }
    value: { format: avro, schemaId: registry }
  - name: as-read
    from: commands
    to: { topic: 'devices/{key}/cmd-v2' }
    value: { format: avro, schemaId: registry, schema: command-v2.avsc }
`);
    const client = new SchemaRegistryClient({ url: registry.url });
    await prepareRegistry(mappings, new SchemaRegistry(client));
    const id = await registerAsProducer('commands-value', COMMAND_V1);
    const value = framed(
      id,
      avro.Type.forSchema(COMMAND_V1 as avro.Schema).toBuffer({ cmd: 'go' }),
    );
    const record = {
      topic: 'commands',
      partition: 0,
      offset: '0',
      key: Buffer.from('d1'),
      value,
      headers: {},
      timestamp: '0',
    };
    const wait = mappings.downlink.prepare(record);
    expect(wait).toBeInstanceOf(Promise);
    await wait;
    expect(mappings.downlink.prepare(record)).toBeUndefined();
    const results = mappings.downlink.route(record);
    expect(
      results.map((result) =>
        result.kind === 'message'
          ? [result.message.topic, result.message.payload.toString()]
          : result,
      ),
    ).toEqual([
      ['devices/d1/cmd', '{"cmd":"go"}'],
      ['devices/d1/cmd-v2', '{"cmd":"go","priority":5}'],
    ]);

    const unknown = { ...record, value: framed(9999, Buffer.from([2, 0x61])) };
    await mappings.downlink.prepare(unknown);
    expect(mappings.downlink.route(unknown)[0]).toEqual({
      kind: 'invalid',
      rule: 'as-written',
      error: `schema id 9999 is not in the schema registry ${registry.url}`,
    });
    client.close();
  });
});

describe('registry access: basic authentication and TLS', () => {
  let secured: TestRegistry;
  let certificates: TestCertificates;

  beforeAll(async () => {
    certificates = await createTestCertificates();
    secured = await startSchemaRegistry({
      users: { bridge: 's3cret' },
      tls: { certFile: certificates.serverCertFile, keyFile: certificates.serverKeyFile },
    });
  });

  afterAll(async () => {
    await secured.stop();
    await rm(certificates.folder, { recursive: true, force: true });
  });

  it('registers with the right password over TLS; names the URL, never the password', async () => {
    expect(secured.url.startsWith('https://127.0.0.1:')).toBe(true);
    const good = new SchemaRegistryClient({
      url: secured.url,
      username: 'bridge',
      password: 's3cret',
      ca: certificates.ca,
    });
    const id = await good.register('secure-value', JSON.stringify(READING));
    expect((await good.schemaById(id)).schema).toContain('"Reading"');
    good.close();

    const wrong = new SchemaRegistryClient({
      url: secured.url.replace('https://', 'https://bridge:wrong-password@'),
      ca: certificates.ca,
    });
    const refused = (await wrong
      .register('secure-value', '"string"')
      .catch((e: unknown) => e)) as Error;
    wrong.close();
    expect(refused.message).toBe(
      `schema registry ${secured.url}: POST /subjects/secure-value: 401 Unauthorized`,
    );
    expect(refused.message).not.toContain('wrong-password');

    const untrusted = new SchemaRegistryClient({
      url: secured.url,
      username: 'bridge',
      password: 's3cret',
    });
    const tls = (await untrusted.schemaById(id).catch((e: unknown) => e)) as Error;
    untrusted.close();
    expect(tls.message).toMatch(
      new RegExp(
        `^schema registry ${secured.url.replace(/[.]/g, '[.]')}: GET /schemas/ids/${id}: .*certificate`,
      ),
    );

    const trustingAll = new SchemaRegistryClient({
      url: secured.url,
      username: 'bridge',
      password: 's3cret',
      rejectUnauthorized: false,
    });
    expect((await trustingAll.schemaById(id)).schemaType).toBe('AVRO');
    trustingAll.close();
  });
});

/*
 * Through the bridge: MQTT publish → Kafka record framed with the registry's id, and a Kafka
 * record framed by a producer → MQTT message.
 */
describe('end to end through the bridge', () => {
  let running: RunningBridge;
  let producer: Producer;
  const topics: Record<string, string> = {};

  beforeAll(async () => {
    topics.readings = await createTopic('sr-readings');
    topics.commands = await createTopic('sr-commands');
    topics.dead = await createTopic('sr-dead');
    running = await startBridge(
      `
deadLetter: { topic: ${topics.dead} }
uplink:
  - name: readings
    from: readings/{deviceId}
    to: { topic: ${topics.readings}, key: '{deviceId}' }
    value: { format: avro, schema: ${readingFile}, subject: { strategy: topic-name } }
downlink:
  - name: commands
    from: ${topics.commands}
    to: { topic: 'devices/{key}/commands' }
    value: { format: avro, schemaId: registry, schema: ${commandFile} }
`,
      { schemaRegistry: { url: registry.url } },
    );
    producer = await connectedProducer();
  });

  afterAll(async () => {
    await producer.disconnect();
    await running.stop();
  });

  it('uplink: the record value carries the id the registry holds the schema under', async () => {
    const subject = `${topics.readings ?? ''}-value`;
    const latest = await registry.call('GET', `/subjects/${subject}/versions/latest`);
    expect(latest.status).toBe(200);
    const client = await connectClient(running.mqttPort, { clientId: 'sr-device' });
    await client.publishAsync('readings/d7', JSON.stringify({ device: 'd7', temperature: 19 }), {
      qos: 1,
    });
    const [record] = await readRecords(topics.readings ?? '', 1);
    expect(record?.key?.toString()).toBe('d7');
    expect(await decodeAsConsumer(record?.value ?? Buffer.alloc(0))).toEqual({
      id: (latest.body as { id: number }).id,
      value: { device: 'd7', temperature: 19 },
    });
  });

  it('downlink: a record a producer framed with a registry id reaches the device as JSON', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'sr-d8' });
    const received = collect(client);
    await client.subscribeAsync('devices/d8/commands', { qos: 1 });
    const id = await registerAsProducer(`${topics.commands ?? ''}-value`, COMMAND_V1);
    const body = avro.Type.forSchema(COMMAND_V1 as avro.Schema).toBuffer({ cmd: 'reboot' });
    await producer.send({
      topic: topics.commands ?? '',
      messages: [{ key: 'd8', value: framed(id, body) }],
    });
    await waitFor(() => received.length > 0, { timeoutMs: 20_000 });
    expect(received.map(({ topic, payload }) => [topic, payload])).toEqual([
      ['devices/d8/commands', '{"cmd":"reboot","priority":5}'],
    ]);
  });
});

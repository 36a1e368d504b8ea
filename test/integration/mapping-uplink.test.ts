import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { createTopic, readRecords } from '../support/kafka-helpers.js';

/*
 * The mapping language end to end: publishes from MQTT.js clients, records read back from the
 * real Kafka. One bridge, one topic per feature.
 */

const SCHEMA = {
  type: 'record',
  name: 'Reading',
  fields: [
    { name: 'device', type: 'string' },
    { name: 'temperature', type: 'double' },
    { name: 'unit', type: 'string', default: 'C' },
  ],
};
const READING = avro.Type.forSchema(SCHEMA as avro.Schema);

const topics: Record<string, string> = {};
let running: RunningBridge;

beforeAll(async () => {
  for (const name of ['json', 'envelope', 'avro', 'confluent', 'fixed', 'template', 'dead']) {
    topics[name] = await createTopic(name, name === 'fixed' || name === 'template' ? 3 : 1);
  }
  topics.roundRobin = await createTopic('rr', 3);
  topics.where = await createTopic('where');
  topics.final = await createTopic('final');
  topics.unmatched = await createTopic('unmatched');
  topics.timestamp = await createTopic('ts');
  // The bridge writes its mapping file in a folder of its own: the schema goes in by absolute path.
  const schemaFolder = await mkdtemp(join(tmpdir(), 'schemas-'));
  const schemaFile = join(schemaFolder, 'reading.avsc');
  await writeFile(schemaFile, JSON.stringify(SCHEMA));
  running = await startBridge(`
deadLetter: { topic: ${topics.dead} }
unmatched: { action: forward, topic: ${topics.unmatched} }
uplink:
  - name: json
    from: json/{deviceId}
    to: { topic: ${topics.json}, key: "{deviceId}", mqttHeaders: [] }
    value:
      format: json
      fields: { temperature: t, unit: meta.unit }
  - name: envelope
    from: envelope/{deviceId}
    to: { topic: ${topics.envelope}, timestamp: payload.at }
    value: { format: json, envelope: [topic, clientId, timestamp, captures] }
  - name: avro
    from: avro/{deviceId}
    to: { topic: ${topics.avro}, key: "{deviceId}" }
    value: { format: avro, schema: ${schemaFile} }
  - name: confluent
    from: confluent/+
    to: { topic: ${topics.confluent} }
    value: { format: avro, schema: ${schemaFile}, schemaId: 42 }
  - name: round-robin
    from: rr/#
    to: { topic: ${topics.roundRobin}, partition: round-robin }
  - name: fixed
    from: fixed/#
    to: { topic: ${topics.fixed}, partition: 2 }
  - name: template
    from: template/{zone}
    to: { topic: ${topics.template}, partition: "{zone}" }
  - name: vip
    from: where/#
    where: { clientId: [vip-1, vip-2], payload: { kind: alarm } }
    to: { topic: ${topics.where}, headers: { via: vip } }
  - name: any-user
    from: where/#
    where: { username: null, qos: 1 }
    to: { topic: ${topics.where}, headers: { via: any } }
  - name: stop-here
    from: final/{id}
    final: true
    where: { payload: { stop: true } }
    to: { topic: ${topics.final}, headers: { via: stop } }
  - name: after
    from: final/#
    to: { topic: ${topics.final}, headers: { via: after } }
  - name: timestamp
    from: ts/{id}
    to: { topic: ${topics.timestamp}, timestamp: payload.at, key: "{payload.serial}" }
`);
});

afterAll(async () => {
  await running.stop();
});

/** An MQTT 5 client that records the reason code of every PUBACK. */
async function v5Client(clientId: string): Promise<{ client: MqttClient; reasons: number[] }> {
  const client = await connectClient(running.mqttPort, { protocolVersion: 5, clientId });
  const reasons: number[] = [];
  client.on('packetreceive', (packet) => {
    if (packet.cmd === 'puback') reasons.push(packet.reasonCode ?? 0);
  });
  return { client, reasons };
}

const json = (value: unknown) => JSON.stringify(value);

describe('value formats', () => {
  it('json: projects and renames fields of a validated payload', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'json-1' });
    await client.publishAsync('json/d1', json({ t: 21.5, h: 40, meta: { unit: 'C' } }), { qos: 1 });
    const [record] = await readRecords(topics.json ?? '', 1);
    expect(record?.key?.toString()).toBe('d1');
    expect(record?.headers).toEqual({});
    expect(JSON.parse(record?.value?.toString() ?? '')).toEqual({ temperature: 21.5, unit: 'C' });
  });

  it('json: wraps the payload in an envelope; the record timestamp comes from the payload', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'env-1' });
    const at = '2024-06-01T12:00:00.000Z';
    await client.publishAsync('envelope/d2', json({ at, v: 1 }), { qos: 1 });
    const [record] = await readRecords(topics.envelope ?? '', 1);
    expect(record?.timestamp).toBe(String(Date.parse(at)));
    expect(JSON.parse(record?.value?.toString() ?? '')).toEqual({
      topic: 'envelope/d2',
      clientId: 'env-1',
      timestamp: Date.parse(at),
      captures: { deviceId: 'd2' },
      payload: { at, v: 1 },
    });
  });

  it('avro: a JSON payload arrives as Avro binary that decodes with the schema', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'avro-1' });
    await client.publishAsync('avro/d3', json({ device: 'd3', temperature: 19.25 }), { qos: 1 });
    const [record] = await readRecords(topics.avro ?? '', 1);
    expect(record?.key?.toString()).toBe('d3');
    expect(READING.fromBuffer(record?.value ?? Buffer.alloc(0))).toEqual(
      READING.clone({ device: 'd3', temperature: 19.25, unit: 'C' }),
    );
  });

  it('avro: Confluent wire format carries magic byte 0 and the schema id', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'avro-2' });
    await client.publishAsync('confluent/x', json({ device: 'd4', temperature: 1, unit: 'F' }), {
      qos: 1,
    });
    const [record] = await readRecords(topics.confluent ?? '', 1);
    const value = record?.value ?? Buffer.alloc(0);
    expect(value.readUInt8(0)).toBe(0);
    expect(value.readUInt32BE(1)).toBe(42);
    expect(READING.fromBuffer(value.subarray(5))).toMatchObject({ device: 'd4', unit: 'F' });
  });
});

describe('partitions', () => {
  it('round-robin spreads records over every partition in turn', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'rr-1' });
    for (let i = 0; i < 6; i++) await client.publishAsync('rr/a', String(i), { qos: 1 });
    const records = await readRecords(topics.roundRobin ?? '', 6);
    const byValue = new Map(records.map((r) => [Number(r.value?.toString()), r.partition]));
    const partitions = [0, 1, 2, 3, 4, 5].map((i) => byValue.get(i));
    expect(new Set(partitions.slice(0, 3))).toEqual(new Set([0, 1, 2]));
    expect(partitions.slice(3)).toEqual(partitions.slice(0, 3));
  });

  it('a fixed number and a template choose the partition', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'part-1' });
    await client.publishAsync('fixed/a', 'f', { qos: 1 });
    await client.publishAsync('template/1', 't', { qos: 1 });
    expect((await readRecords(topics.fixed ?? '', 1))[0]?.partition).toBe(2);
    expect((await readRecords(topics.template ?? '', 1))[0]?.partition).toBe(1);
  });
});

describe('dead letters', () => {
  it.each([
    ['json/d9', '{"t": 21.5', 'json', /^payload is not valid JSON: /],
    [
      'avro/d9',
      json({ device: 'd9' }),
      'avro',
      /^payload does not match the Avro schema: field "temperature"/,
    ],
    [
      'template/7',
      'x',
      'template',
      /^partition 7 is out of range: Kafka topic ".*" has 3 partitions$/,
    ],
  ])(
    'a publish to %s gets PUBACK 0x99 and a dead-letter record with the error',
    async (topic, payload, rule, error) => {
      const clientId = `dead-${rule}`;
      const { client, reasons } = await v5Client(clientId);
      await expect(client.publishAsync(topic, payload, { qos: 1 })).rejects.toThrow();
      expect(reasons).toEqual([0x99]);
      const [record] = await readRecords(topics.dead ?? '', 1, {
        match: (r) => r.headers['mqtt-client-id'] === clientId,
      });
      expect(record?.key?.toString()).toBe(topic);
      expect(record?.value?.toString()).toBe(payload);
      expect(record?.headers['mqtt-topic']).toBe(topic);
      expect(record?.headers['dead-letter-rule']).toBe(rule);
      expect(record?.headers['dead-letter-error']).toMatch(error);
    },
  );
});

describe('dead letters for MQTT 3.1.1', () => {
  it('acknowledges an invalid payload once it is dead-lettered, and keeps the connection', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'dead-v3' });
    // 3.1.1 cannot be told 0x99; retransmitting would not make the payload valid
    await client.publishAsync('json/d3', 'not json', { qos: 1 });
    await client.publishAsync('json/d3', 'still not json', { qos: 2 });
    const records = await readRecords(topics.dead ?? '', 2, {
      match: (r) => r.headers['mqtt-client-id'] === 'dead-v3',
    });
    expect(records.map((record) => record.value?.toString())).toEqual([
      'not json',
      'still not json',
    ]);
    expect(client.connected).toBe(true);
  });
});

describe('matching', () => {
  it('where: conditions on client id, username, QoS and payload fields pick the rules', async () => {
    const vip = await connectClient(running.mqttPort, { clientId: 'vip-1' });
    const other = await connectClient(running.mqttPort, { clientId: 'plain' });
    await vip.publishAsync('where/a', json({ kind: 'alarm', n: 1 }), { qos: 1 }); // vip + any
    await vip.publishAsync('where/a', json({ kind: 'info', n: 2 }), { qos: 0 }); // nothing → forwarded
    await other.publishAsync('where/a', json({ kind: 'alarm', n: 3 }), { qos: 1 }); // any
    const records = await readRecords(topics.where ?? '', 3);
    expect(
      records.map((r) => [
        (JSON.parse(r.value?.toString() ?? '') as { n: number }).n,
        r.headers.via,
      ]),
    ).toEqual([
      [1, 'vip'],
      [1, 'any'],
      [3, 'any'],
    ]);
    const [forwarded] = await readRecords(topics.unmatched ?? '', 1, {
      match: (r) => r.headers['mqtt-client-id'] === 'vip-1',
    });
    expect(forwarded?.value?.toString()).toBe(json({ kind: 'info', n: 2 }));
  });

  it('final: a matching final rule stops the later ones', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'final-1' });
    await client.publishAsync('final/a', json({ stop: true, n: 1 }), { qos: 1 });
    await client.publishAsync('final/a', json({ stop: false, n: 2 }), { qos: 1 });
    const records = await readRecords(topics.final ?? '', 2);
    expect(records.map((r) => r.headers.via)).toEqual(['stop', 'after']);
  });

  it('unmatched: forward sends the raw publish to the default topic, keyed by MQTT topic', async () => {
    const { client, reasons } = await v5Client('lost-1');
    await client.publishAsync('nowhere/at/all', 'raw bytes', { qos: 1 });
    expect(reasons).toEqual([0]);
    const [record] = await readRecords(topics.unmatched ?? '', 1, {
      match: (r) => r.headers['mqtt-client-id'] === 'lost-1',
    });
    expect(record?.key?.toString()).toBe('nowhere/at/all');
    expect(record?.value?.toString()).toBe('raw bytes');
  });

  it('timestamp and key from payload fields', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'ts-1' });
    await client.publishAsync('ts/a', json({ at: 1_700_000_000_123, serial: 'S-9' }), { qos: 1 });
    const [record] = await readRecords(topics.timestamp ?? '', 1);
    expect(record?.timestamp).toBe('1700000000123');
    expect(record?.key?.toString()).toBe('S-9');
  });
});

describe('unmatched: reject', () => {
  it('answers MQTT 5 PUBACK 0x90 and sends nothing', async () => {
    const kept = await createTopic('kept');
    const bridge = await startBridge(`
unmatched: { action: reject }
uplink:
  - { name: only, from: only/#, to: { topic: ${kept} } }
`);
    try {
      const client = await connectClient(bridge.mqttPort, { protocolVersion: 5, clientId: 'rej' });
      const reasons: number[] = [];
      client.on('packetreceive', (packet) => {
        if (packet.cmd === 'puback') reasons.push(packet.reasonCode ?? 0);
      });
      await expect(client.publishAsync('other', 'x', { qos: 1 })).rejects.toThrow();
      await client.publishAsync('only/marker', 'm', { qos: 1 });
      expect(reasons).toEqual([0x90, 0]);
      expect(await bridge.metric('bridge_mqtt_publishes_unmapped_total')).toBe(1);
      expect((await readRecords(kept, 1))[0]?.value?.toString()).toBe('m');
    } finally {
      await bridge.stop();
    }
  });
});

describe('fixed partitions at start', () => {
  it('refuses to start with a fixed partition its topic does not have', async () => {
    const small = await createTopic('small', 2);
    await expect(
      startBridge(`
uplink:
  - name: too-far
    from: a
    to: { topic: ${small}, partition: 5 }
`),
    ).rejects.toThrow(
      /test\.yaml:5:\d+: partition 5 is out of range: Kafka topic ".*" has 2 partitions/,
    );
  });
});

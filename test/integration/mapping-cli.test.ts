import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import { beforeAll, describe, expect, it } from 'vitest';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `mqtt-kafka-bridge ARGS` from source and waits for it to exit. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  const run: Run = { code: null, stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      run.code = code;
      resolve(run);
    }),
  );
}

const SCHEMA = {
  type: 'record',
  name: 'R',
  fields: [{ name: 'v', type: 'int' }],
};

let folder: string;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'mappings-cli-'));
  await writeFile(join(folder, 'r.avsc'), JSON.stringify(SCHEMA));
  await writeFile(
    join(folder, 'rules.yaml'),
    `deadLetter: { topic: dead }
uplink:
  - name: telemetry
    from: devices/{deviceId}/telemetry
    to: { topic: iot.telemetry, key: "{deviceId}", mqttHeaders: [clientId, username, qos] }
    value: { format: json, fields: [t] }
  - name: avro
    from: devices/{deviceId}/#
    where: { qos: [1, 2] }
    to: { topic: iot.avro, partition: 3 }
    value: { format: avro, schema: r.avsc, schemaId: 7 }
downlink:
  - name: commands
    from: iot.commands
    to:
      topic: devices/{key}/commands
      expiry: { ttl: header.ttl }
      correlationData: header.corr
      userProperties: [trace]
    value: { format: json }
  - name: avro-config
    from: { pattern: 'iot\\.config\\..+' }
    to: { topic: 'config/{value.v}', retain: true, qos: 2 }
    value: { format: avro, schema: r.avsc, schemaId: any }
`,
  );
});

describe('mqtt-kafka-bridge mappings validate', () => {
  it('accepts good mappings', async () => {
    const run = await cli(['mappings', 'validate', folder]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${folder}: 2 uplink rules, 2 downlink rules, no problems\n`);
  });

  it('reads BRIDGE_MAPPINGS without a path', async () => {
    const run = await cli(['mappings', 'validate'], { BRIDGE_MAPPINGS: folder });
    expect(run.code).toBe(0);
  });

  it('prints every problem as file:line:column: message and exits 1', async () => {
    const bad = await mkdtemp(join(tmpdir(), 'mappings-cli-bad-'));
    const file = join(bad, 'bad.yaml');
    await writeFile(
      file,
      [
        'uplink:',
        '  - name: x',
        '    from: a/{deviceId}',
        '    to: { topic: t, partiton: 1, key: "{deviceid}" }',
        '    value: { format: avro, schema: missing.avsc }',
        '',
      ].join('\n'),
    );
    const run = await cli(['mappings', 'validate', file]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      `${file}:4:21: unknown field "partiton" (did you mean "partition"?)`,
      `${file}:4:40: unknown variable "deviceid" (did you mean "deviceId"?)`,
      `${file}:5:36: Avro schema "missing.avsc" (${join(bad, 'missing.avsc')}): no such file`,
    ]);
  });
});

describe('mqtt-kafka-bridge mappings test', () => {
  it('prints the records of a publish as JSON, with the rule of each', async () => {
    const run = await cli([
      'mappings',
      'test',
      '--mappings',
      folder,
      '--topic',
      'devices/d7/telemetry',
      '--payload',
      '{"t": 21.5, "v": 3}',
      '--client-id',
      'c1',
      '--username',
      'u1',
      '--qos',
      '1',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.stdout) as {
      outcome: string;
      records: Array<Record<string, unknown>>;
    };
    expect(printed.outcome).toBe('mapped');
    expect(printed.records).toEqual([
      {
        rule: 'telemetry',
        topic: 'iot.telemetry',
        key: 'd7',
        partition: null,
        partitioner: 'hash',
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
        headers: { 'mqtt-client-id': 'c1', 'mqtt-username': 'u1', 'mqtt-qos': '1' },
        value: '{"t":21.5}',
      },
      expect.objectContaining({ rule: 'avro', topic: 'iot.avro', partition: 3 }),
    ]);
    const avroValue = Buffer.from(
      (printed.records[1]?.value as { base64: string }).base64,
      'base64',
    );
    expect(avroValue.subarray(0, 5)).toEqual(Buffer.from([0, 0, 0, 0, 7]));
    expect(avro.Type.forSchema(SCHEMA as avro.Schema).fromBuffer(avroValue.subarray(5))).toEqual({
      v: 3,
    });
  });

  it('shows a payload a rule cannot encode as its dead letter, and an unmatched publish', async () => {
    const invalid = await cli([
      'mappings',
      'test',
      '-m',
      folder,
      '-t',
      'devices/d7/telemetry',
      '-p',
      'nope',
    ]);
    const printed = JSON.parse(invalid.stdout) as {
      outcome: string;
      records: Array<{ topic: string }>;
      errors: Array<{ rule: string; error: string }>;
    };
    expect(printed.outcome).toBe('invalid');
    expect(printed.records.map((r) => r.topic)).toEqual(['dead']);
    expect(printed.errors).toEqual([
      { rule: 'telemetry', error: expect.stringMatching(/^payload is not valid JSON/) as string },
    ]);

    const unmatched = await cli(['mappings', 'test', '-m', folder, '-t', 'elsewhere', '-p', 'x']);
    expect(JSON.parse(unmatched.stdout)).toEqual({ outcome: 'unmatched', records: [], errors: [] });
  });

  it('refuses a bad --qos', async () => {
    const run = await cli(['mappings', 'test', '-m', folder, '-t', 'a', '-p', 'x', '--qos', '3']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('expected 0, 1 or 2');
  });
});

describe('mqtt-kafka-bridge mappings test --downlink', () => {
  it('prints the MQTT messages of a Kafka record as JSON, with the rule of each', async () => {
    const run = await cli([
      'mappings',
      'test',
      '-m',
      folder,
      '--downlink',
      '--kafka-topic',
      'iot.commands',
      '--key',
      'd7',
      '--value',
      '{"cmd": "open"}',
      '--header',
      'ttl=60',
      '--header',
      'corr=c-1',
      '--header',
      'trace=t-1',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.stdout) as { messages: Array<{ expiresAt: string }> };
    expect(printed).toEqual({
      outcome: 'mapped',
      messages: [
        {
          rule: 'commands',
          topic: 'devices/d7/commands',
          qos: 1,
          retain: false,
          expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
          properties: {
            payloadFormatIndicator: true,
            correlationData: 'c-1',
            userProperties: { trace: 't-1' },
          },
          payload: '{"cmd": "open"}',
        },
      ],
      errors: [],
    });
    const expiresIn = Date.parse(printed.messages[0]?.expiresAt ?? '') - Date.now();
    expect(expiresIn).toBeGreaterThan(50_000);
    expect(expiresIn).toBeLessThanOrEqual(60_000);
  });

  it('decodes a Confluent-framed Avro value given as base64, matched by a pattern', async () => {
    const body = avro.Type.forSchema(SCHEMA as avro.Schema).toBuffer({ v: 5 });
    const value = Buffer.concat([Buffer.from([0, 0, 0, 0, 9]), body]).toString('base64');
    const run = await cli([
      'mappings',
      'test',
      '-m',
      folder,
      '--downlink',
      '--kafka-topic',
      'iot.config.eu',
      '--value-base64',
      value,
    ]);
    expect(JSON.parse(run.stdout)).toEqual({
      outcome: 'mapped',
      messages: [
        {
          rule: 'avro-config',
          topic: 'config/5',
          qos: 2,
          retain: true,
          expiresAt: null,
          properties: { payloadFormatIndicator: true },
          payload: '{"v":5}',
        },
      ],
      errors: [],
    });
  });

  it('shows records a rule cannot map, tombstones and unmatched records', async () => {
    const base = ['mappings', 'test', '-m', folder, '--downlink', '--kafka-topic'];
    const invalid = await cli([...base, 'iot.commands', '--key', 'd7', '--value', 'nope']);
    expect(JSON.parse(invalid.stdout)).toEqual({
      outcome: 'invalid',
      messages: [],
      errors: [
        {
          rule: 'commands',
          error: expect.stringMatching(/^the record value is not valid JSON/) as string,
        },
      ],
    });
    const tombstone = await cli([...base, 'iot.commands', '--key', 'd7']);
    expect(JSON.parse(tombstone.stdout)).toMatchObject({
      outcome: 'mapped',
      messages: [{ topic: 'devices/d7/commands', payload: '' }],
    });
    const unmatched = await cli([...base, 'elsewhere', '--value', 'x']);
    expect(JSON.parse(unmatched.stdout)).toEqual({
      outcome: 'unmatched',
      messages: [],
      errors: [],
    });
  });

  it('requires --kafka-topic', async () => {
    const run = await cli(['mappings', 'test', '-m', folder, '--downlink', '--value', 'x']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('mappings test --downlink: --kafka-topic is required\n');
  });
});

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
`,
  );
});

describe('mqtt-kafka-bridge mappings validate', () => {
  it('accepts good mappings', async () => {
    const run = await cli(['mappings', 'validate', folder]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${folder}: 2 uplink rules, 0 downlink rules, no problems\n`);
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

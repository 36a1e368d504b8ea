import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { createTopic, readRecords } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from source, as `mqtt-kafka-bridge ARGS`. */
function cli(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  const run: Run = { code: null, stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  const exited = new Promise<Run>((resolve) =>
    child.on('exit', (code) => {
      run.code = code;
      resolve(run);
    }),
  );
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  return { child, run, exited };
}

/** An MQTT client connected to the bridge `run` started, once its log says where it listens. */
async function connectOnceListening(run: Run) {
  const listening = await waitFor(
    () => run.stdout.split('\n').find((line) => line.includes('"bridge listening"')),
    { timeoutMs: 30_000, what: 'the bridge to listen' },
  );
  const { mqtt: address } = JSON.parse(listening) as { mqtt: { port: number } };
  return mqtt.connectAsync({ host: '127.0.0.1', port: address.port, reconnectPeriod: 0 });
}

describe('mqtt-kafka-bridge CLI', () => {
  it('prints its version and help', async () => {
    const version = await cli(['--version']).exited;
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = await cli(['start', '--help']).exited;
    expect(help.stdout).toContain('--config <file>');
    expect(help.stdout).toContain('--mappings <path>');
  });

  it('refuses bad configuration, naming the option, its env var and the value', async () => {
    const run = await cli(['start'], { BRIDGE_MQTT_PORT: '70000' }).exited;
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('mqtt.port (env BRIDGE_MQTT_PORT)');
    expect(run.stderr).toContain('70000');
  });

  it('refuses an invalid mapping file with file:line:column', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'cli-'));
    const file = join(folder, 'bad.yaml');
    await writeFile(file, 'uplink:\n  - name: x\n    from: a/b\n    to:\n      topc: t\n');
    const run = await cli(['start', '--mappings', file], {
      BRIDGE_KAFKA_BROKERS: inject('kafkaBrokers'),
    }).exited;
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${file}:5:7`);
  });

  it('says which Kafka it cannot reach', async () => {
    const run = await cli(['start', '--mappings', 'mappings'], {
      BRIDGE_KAFKA_BROKERS: '127.0.0.1:1',
      BRIDGE_KAFKA_CONNECT_TIMEOUT_MS: '2000',
      BRIDGE_MQTT_PORT: '0',
      BRIDGE_WEBSOCKET_PORT: '0',
      BRIDGE_HTTP_PORT: '0',
    }).exited;
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('cannot reach Kafka at 127.0.0.1:1');
  });

  it('starts with a --config file, bridges a publish, and exits 0 on SIGTERM', async () => {
    const topic = await createTopic();
    const folder = await mkdtemp(join(tmpdir(), 'cli-'));
    await writeFile(
      join(folder, 'rules.yaml'),
      `uplink:\n  - name: all\n    from: cli/{id}\n    to: { topic: ${topic}, key: "{id}" }\n`,
    );
    const configFile = join(folder, 'bridge.json');
    await writeFile(
      configFile,
      JSON.stringify({
        mqtt: { host: '127.0.0.1', port: 0 },
        websocket: { host: '127.0.0.1', port: 0 },
        http: { port: 0 },
        mappings: folder,
      }),
    );
    const { child, run, exited } = cli(['start', '--config', configFile], {
      BRIDGE_KAFKA_BROKERS: inject('kafkaBrokers'),
    });
    const client = await connectOnceListening(run);
    await client.publishAsync('cli/one', 'from the cli', { qos: 1 });
    await client.endAsync();
    const [record] = await readRecords(topic, 1);
    expect(record?.value?.toString()).toBe('from the cli');

    child.kill('SIGTERM');
    expect((await exited).code).toBe(0);
    expect(run.stdout).toContain('"stopped"');
  });

  it('reloads the mappings on SIGHUP, keeping its connections', async () => {
    const before = await createTopic('before');
    const after = await createTopic('after');
    const folder = await mkdtemp(join(tmpdir(), 'cli-'));
    const rules = (topic: string) =>
      `uplink:\n  - name: all\n    from: cli/{id}\n    to: { topic: ${topic} }\n`;
    await writeFile(join(folder, 'rules.yaml'), rules(before));
    const { child, run } = cli(['start', '--mappings', folder], {
      BRIDGE_KAFKA_BROKERS: inject('kafkaBrokers'),
      BRIDGE_MAPPINGS_WATCH: 'false', // only the signal reloads
      BRIDGE_MQTT_HOST: '127.0.0.1',
      BRIDGE_MQTT_PORT: '0',
      BRIDGE_WEBSOCKET_PORT: '0',
      BRIDGE_HTTP_PORT: '0',
    });
    const client = await connectOnceListening(run);
    onTestFinished(() => client.endAsync(true));
    await client.publishAsync('cli/one', 'before the reload', { qos: 1 });

    await writeFile(join(folder, 'rules.yaml'), rules(after));
    child.kill('SIGHUP');
    const reloaded = await waitFor(
      () => run.stdout.split('\n').find((line) => line.includes('"mappings reloaded"')),
      { what: 'the reload' },
    );
    expect(JSON.parse(reloaded)).toMatchObject({ rules: 1, mappings: folder });
    await client.publishAsync('cli/one', 'after the reload', { qos: 1 });
    expect((await readRecords(after, 1))[0]?.value?.toString()).toBe('after the reload');
    expect((await readRecords(before, 1))[0]?.value?.toString()).toBe('before the reload');
    expect(client.connected).toBe(true);
  });
});

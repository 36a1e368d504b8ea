/**
 * `kafka.sasl.mechanism=oauthbearer` with `kafka.sasl.oauthTokenFile` against a real Kafka: a
 * PRIVATE one-node KRaft cluster whose SASL_SSL listener takes OAUTHBEARER next to SCRAM-SHA-512,
 * with Kafka's built-in unsecured validator (unsigned JWS tokens, see
 * scripts/kafka/security.ts saslSslBrokerSettings and test/support/oauth-token.ts). The bridge
 * runs as a process configured only through BRIDGE_KAFKA_* variables, as a user would set them.
 *
 * - A valid token: the bridge gets in, a QoS 1 publish is acknowledged and its record is in Kafka.
 * - An expired token: Kafka refuses the bridge — one clear error line, readiness 503 with the
 *   reason; a valid token written into the same file lets it in without a restart (it tries
 *   again every 5 s and reads the file at every authentication).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeProcess, stopAllBridgeProcesses, type Health } from '../support/bridge-process.js';
import { uniqueId } from '../support/kafka-helpers.js';
import { unsecuredToken } from '../support/oauth-token.js';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.js';
import { readAllRecords } from '../support/stream-devices.js';
import { waitFor } from '../support/wait-for.js';

let cluster: PrivateCluster | undefined;
let folder: string | undefined;

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'bridge-oauth-'));
  cluster = await startPrivateCluster({ nodes: 1, security: 'sasl-ssl' });
}, 120_000);

afterAll(async () => {
  await stopAllBridgeProcesses();
  await cluster?.destroy();
  if (folder !== undefined) await rm(folder, { recursive: true, force: true });
});

function theCluster(): PrivateCluster {
  if (!cluster) throw new Error('private cluster not started');
  return cluster;
}

/** A new (not yet written) token file in the test's folder. */
function tokenFile(): string {
  if (folder === undefined) throw new Error('no temporary folder');
  return path.join(folder, `token-${uniqueId()}`);
}

/** What a user sets for OAUTHBEARER over TLS: no user name, no password. */
function oauthEnv(file: string): Record<string, string> {
  const kafka = theCluster();
  return {
    BRIDGE_KAFKA_BROKERS: kafka.brokers,
    BRIDGE_KAFKA_SSL_ENABLED: 'true',
    BRIDGE_KAFKA_SSL_CA_FILE: kafka.caFile ?? '',
    BRIDGE_KAFKA_SASL_MECHANISM: 'oauthbearer',
    BRIDGE_KAFKA_SASL_OAUTH_TOKEN_FILE: file,
  };
}

const HOUR_MS = 3_600_000;

const validToken = (): string => unsecuredToken({ sub: 'bridge', lifetimeMs: HOUR_MS });
/** Issued two hours ago, expired one hour ago. */
const expiredToken = (): string =>
  unsecuredToken({ sub: 'bridge', lifetimeMs: HOUR_MS, issuedAtMs: Date.now() - 2 * HOUR_MS });

const UPLINK_ONLY = (topic: string): string =>
  `uplink:\n  - name: up\n    from: up/{device}\n    to: { topic: ${topic}, key: '{device}' }\n`;

/** The bridge's error lines that say Kafka refused it. */
function refusals(bridge: BridgeProcess): string[] {
  return bridge
    .logLines()
    .filter((line) => (line.level ?? 0) >= 50 && String(line.msg).includes('refused the bridge'))
    .map((line) => String(line.msg));
}

/** Publishes one QoS 1 message (acknowledged or throws) and returns the records of `topic`. */
async function publishAndRead(
  bridge: BridgeProcess,
  topic: string,
  device: string,
  payload: string,
): Promise<{ key: string; value: string }[]> {
  const client = await mqtt.connectAsync({
    host: '127.0.0.1',
    port: bridge.mqttPort,
    clientId: `oauth-${uniqueId()}`,
    reconnectPeriod: 0,
  });
  try {
    await client.publishAsync(`up/${device}`, payload, { qos: 1 });
  } finally {
    await client.endAsync();
  }
  const kafka = theCluster();
  // read back as the cluster's SCRAM user: the record is in Kafka, whoever looks
  const records = await readAllRecords(
    kafka.brokers.split(','),
    topic,
    15_000,
    kafka.clientSecurity,
  );
  return records.map((record) => ({ key: record.key, value: record.value.toString() }));
}

describe('kafka.sasl.mechanism=oauthbearer against a real Kafka (unsecured tokens)', () => {
  it('a valid token in kafka.sasl.oauthTokenFile: the bridge gets in, a QoS 1 publish lands in Kafka', async () => {
    const kafka = theCluster();
    const topic = `oauth-${uniqueId()}`;
    await kafka.createTopic(topic, { partitions: 1 });
    const file = tokenFile();
    const token = validToken();
    await writeFile(file, `${token}\n`);

    const bridge = await BridgeProcess.start({
      brokers: kafka.brokers,
      mappings: UPLINK_ONLY(topic),
      env: oauthEnv(file),
    });
    await waitFor(async () => (await bridge.health()).status === 200, {
      timeoutMs: 15_000,
      what: 'readiness 200',
    });

    const payload = `hello over oauth ${uniqueId()}`;
    expect(await publishAndRead(bridge, topic, 'dev-1', payload)).toEqual([
      { key: 'dev-1', value: payload },
    ]);
    expect(refusals(bridge)).toEqual([]);
    expect(bridge.stdout + bridge.stderr).not.toContain(token);
  }, 45_000);

  it('an expired token: one clear line, readiness 503 with the reason; in without a restart once the file holds a valid one', async () => {
    const kafka = theCluster();
    const topic = `oauth-late-${uniqueId()}`;
    await kafka.createTopic(topic, { partitions: 1 });
    const file = tokenFile();
    const expired = expiredToken();
    await writeFile(file, `${expired}\n`);

    const bridge = await BridgeProcess.start({
      brokers: kafka.brokers,
      mappings: UPLINK_ONLY(topic),
      env: oauthEnv(file),
      until: 'http',
    });
    let last: Health | undefined;
    const refused = await waitFor(
      async () => {
        const state = (last = await bridge.health());
        return state.status === 503 && state.reason?.includes('refused the bridge')
          ? state
          : undefined;
      },
      { timeoutMs: 20_000, what: 'readiness 503 saying Kafka refused the bridge' },
    ).catch((error: unknown) => {
      throw new Error(
        `${(error as Error).message}; last readiness ${JSON.stringify(last)}, ` +
          `bridge ${bridge.running ? 'running' : 'exited'}, its warnings/errors: ` +
          (bridge.problems().join('; ') || 'none'),
        { cause: error },
      );
    });
    expect(refused.reason).toMatch(/^Kafka at 127\.0\.0\.1:\d+ refused the bridge: .*OAUTHBEARER/);
    expect(refusals(bridge)).toHaveLength(1);
    expect(refusals(bridge)[0]).toContain('kafka.sasl');
    expect(bridge.running).toBe(true);

    const pid = bridge.pid;
    const token = validToken();
    await writeFile(file, `${token}\n`);
    // the next attempt (within 5 s) reads the file again
    await waitFor(async () => (await bridge.health()).status === 200, {
      timeoutMs: 20_000,
      what: 'the bridge to get in with the renewed token and be ready',
    });
    expect(bridge.pid).toBe(pid);
    expect(bridge.running).toBe(true);
    // its MQTT listeners are up (the log line may reach the pipe after the HTTP answer)
    const listening = (await waitFor(
      () => bridge.logLines().find((line) => line.msg === 'bridge listening'),
      { timeoutMs: 5_000, what: 'the "bridge listening" line' },
    )) as { mqtt?: { port: number } };
    bridge.mqttPort = listening.mqtt?.port ?? 0;
    expect(bridge.mqttPort).toBeGreaterThan(0);
    expect(refusals(bridge)).toHaveLength(1);

    const payload = `after renewal ${uniqueId()}`;
    expect(await publishAndRead(bridge, topic, 'dev-2', payload)).toEqual([
      { key: 'dev-2', value: payload },
    ]);
    const output = bridge.stdout + bridge.stderr;
    expect(output).not.toContain(expired);
    expect(output).not.toContain(token);
  }, 60_000);
});

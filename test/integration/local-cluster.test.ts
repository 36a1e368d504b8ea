/**
 * The local Kafka cluster and SASL_SSL Kafka (scripts/kafka/start.ts --nodes 3 --security
 * sasl-ssl), run as a user runs it, and the tests' private cluster (test/support/private-cluster.ts)
 * through a node crash and restart. Neither touches the shared test Kafka.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigResourceTypes, Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPortFree, isProcessAlive, REPO_ROOT } from '../../scripts/kafka/local-kafka.js';
import { uniqueId } from '../support/kafka-helpers.js';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.js';
import { waitFor } from '../support/wait-for.js';

const execFileAsync = promisify(execFile);

/** Runs `npx tsx scripts/kafka/<script> args` with KAFKA_PORT and KAFKA_DATA_DIR set. */
async function runScript(
  script: string,
  args: string[],
  env: { port: number; home: string },
): Promise<string> {
  const { stdout } = await execFileAsync(
    'npx',
    ['tsx', path.join('scripts', 'kafka', script), ...args],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, KAFKA_PORT: String(env.port), KAFKA_DATA_DIR: env.home },
      timeout: 120_000,
    },
  );
  return stdout;
}

/**
 * Three consecutive free ports, below Linux's ephemeral range (32768 and up): a port there may be
 * taken as the local end of any outgoing connection (other test files' clients) in the seconds
 * before the node binds it.
 */
async function freePortRun(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if ((await isPortFree(port)) && (await isPortFree(port + 1)) && (await isPortFree(port + 2))) {
      return port;
    }
  }
}

/** The `export NAME=value` lines of the start script's output (shell quoting undone). */
function printedEnv(output: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [, name, raw] of output.matchAll(/^export (BRIDGE_KAFKA_\w+)=(.*)$/gm)) {
    if (name === undefined || raw === undefined) continue;
    env[name] = raw.startsWith("'") ? raw.slice(1, -1).replaceAll(`'\\''`, "'") : raw;
  }
  return env;
}

function printedPids(output: string): Map<number, number> {
  const pids = new Map<number, number>();
  for (const [, id, pid] of output.matchAll(/^ {2}node (\d+) +\S+ +pid (\d+)/gm)) {
    pids.set(Number(id), Number(pid));
  }
  return pids;
}

describe('npm run kafka:start -- --nodes 3 --security sasl-ssl', () => {
  let home = '';
  let port = 0;
  let output = '';
  let env: Record<string, string> = {};
  let pids = new Map<number, number>();

  /** A KafkaJS client with exactly the printed settings. */
  function clientFromPrintedEnv(password = env.BRIDGE_KAFKA_SASL_PASSWORD ?? ''): Kafka {
    expect(env.BRIDGE_KAFKA_SSL_ENABLED).toBe('true');
    expect(env.BRIDGE_KAFKA_SASL_MECHANISM).toBe('scram-sha-512');
    return new Kafka({
      clientId: `local-cluster-test-${uniqueId()}`,
      brokers: (env.BRIDGE_KAFKA_BROKERS ?? '').split(','),
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3_000,
      ssl: { ca: [readFileSync(env.BRIDGE_KAFKA_SSL_CA_FILE ?? '', 'utf8')] },
      sasl: {
        mechanism: 'scram-sha-512',
        username: env.BRIDGE_KAFKA_SASL_USERNAME ?? '',
        password,
      },
    });
  }

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'bridge-local-cluster-'));
    port = await freePortRun();
    output = await runScript('start.ts', ['--nodes', '3', '--security', 'sasl-ssl'], {
      port,
      home,
    });
    env = printedEnv(output);
    pids = printedPids(output);
  }, 150_000);

  afterAll(async () => {
    if ([...pids.values()].some(isProcessAlive)) {
      await runScript('stop.ts', [], { port, home }).catch(() => undefined);
    }
    for (const pid of pids.values()) {
      if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('prints the bootstrap list, the pids and the BRIDGE_KAFKA_* variables and a kcat line', () => {
    const brokers = [port, port + 1, port + 2].map((p) => `127.0.0.1:${p}`).join(',');
    expect(output).toContain(`ready at ${brokers}`);
    expect([...pids.keys()]).toEqual([1, 2, 3]);
    expect(Object.keys(env).sort()).toEqual([
      'BRIDGE_KAFKA_BROKERS',
      'BRIDGE_KAFKA_SASL_MECHANISM',
      'BRIDGE_KAFKA_SASL_PASSWORD',
      'BRIDGE_KAFKA_SASL_USERNAME',
      'BRIDGE_KAFKA_SSL_CA_FILE',
      'BRIDGE_KAFKA_SSL_ENABLED',
    ]);
    expect(env.BRIDGE_KAFKA_BROKERS).toBe(brokers);
    const caFile = env.BRIDGE_KAFKA_SSL_CA_FILE ?? '';
    expect(path.isAbsolute(caFile)).toBe(true);
    expect(caFile.startsWith(home)).toBe(true);
    expect(readFileSync(caFile, 'utf8')).toContain('BEGIN CERTIFICATE');
    expect(env.BRIDGE_KAFKA_SASL_PASSWORD).toMatch(/^[0-9a-f]{20,}$/);
    expect(output).toContain(
      `kcat -b ${brokers} -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 ` +
        `-X sasl.username=${env.BRIDGE_KAFKA_SASL_USERNAME ?? ''} ` +
        `-X sasl.password=${env.BRIDGE_KAFKA_SASL_PASSWORD ?? ''} -X ssl.ca.location=${caFile} -L`,
    );
  });

  it('takes TLS + SCRAM-SHA-512 with those values: RF 3, min ISR 2, acks=all produce, consume', async () => {
    const kafka = clientFromPrintedEnv();
    const topic = `local-cluster-${uniqueId()}`;
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    const consumer = kafka.consumer({ groupId: `local-cluster-${uniqueId()}` });
    try {
      await admin.connect();
      // No replication factor given: the broker's default.replication.factor.
      // (KafkaJS's waitForLeaders fails on a broker the topic's metadata has not reached yet.)
      await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
      const partitions = await waitFor(
        async () => {
          const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
          const found = topics[0]?.partitions ?? [];
          return found.length === 3 && found.every((p) => p.leader >= 0) && found;
        },
        { timeoutMs: 15_000, intervalMs: 100, what: 'leaders of the new topic' },
      );
      for (const partition of partitions) expect(partition.replicas).toHaveLength(3);
      expect(new Set(partitions.map((p) => p.leader)).size).toBeGreaterThan(1);
      const described = await admin.describeConfigs({
        resources: [
          { type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['min.insync.replicas'] },
        ],
        includeSynonyms: false,
      });
      const minIsr = described.resources[0]?.configEntries.find(
        (entry) => entry.configName === 'min.insync.replicas',
      );
      expect(minIsr?.configValue).toBe('2');

      await producer.connect();
      const values = Array.from({ length: 30 }, (_, i) => `value-${i}`);
      await producer.send({
        topic,
        acks: -1,
        messages: values.map((value, i) => ({ key: `k${i}`, value })),
      });

      const received: string[] = [];
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message }) => {
          received.push(message.value?.toString() ?? '');
          return Promise.resolve();
        },
      });
      await waitFor(() => received.length >= values.length, {
        timeoutMs: 30_000,
        what: 'the records',
      });
      expect(received.sort()).toEqual([...values].sort());
    } finally {
      await Promise.allSettled([consumer.disconnect(), producer.disconnect(), admin.disconnect()]);
    }
  });

  it('refuses a wrong password', async () => {
    const admin = clientFromPrintedEnv('not-the-password').admin();
    await expect(admin.connect()).rejects.toThrow(/SASL SCRAM SHA512 authentication failed/i);
    await admin.disconnect();
  });

  it('prints the same settings when started again while it runs', async () => {
    const again = await runScript('start.ts', ['--nodes', '3', '--security', 'sasl-ssl'], {
      port,
      home,
    });
    expect(again).toContain('already running');
    expect(printedEnv(again)).toEqual(env);
    expect(printedPids(again)).toEqual(pids);
  });

  it('kafka:stop stops all three nodes', async () => {
    const stopped = await runScript('stop.ts', [], { port, home });
    for (const [id, pid] of pids) expect(stopped).toContain(`node ${id} pid ${pid}`);
    for (const pid of pids.values()) expect(isProcessAlive(pid)).toBe(false);
    expect(existsSync(env.BRIDGE_KAFKA_SSL_CA_FILE ?? '')).toBe(true); // data kept without --clean
  });
});

describe('private cluster (3 nodes, SASL_SSL): a node killed and restarted', () => {
  let cluster: PrivateCluster | undefined;

  beforeAll(async () => {
    cluster = await startPrivateCluster({ nodes: 3, security: 'sasl-ssl' });
  }, 150_000);

  afterAll(async () => {
    await cluster?.destroy();
  });

  /** Sends one acks=all record after another until stopped; remembers what Kafka acknowledged. */
  function startLoad(producer: Producer, topic: string) {
    const acknowledged: string[] = [];
    const state = { stopped: false };
    let failure: unknown;
    const done = (async () => {
      for (let i = 0; !state.stopped; i++) {
        try {
          await producer.send({
            topic,
            acks: -1,
            messages: [{ key: `k${i % 7}`, value: `v${i}` }],
          });
          acknowledged.push(`v${i}`);
        } catch (error) {
          failure = error;
          return;
        }
      }
    })();
    return {
      acknowledged,
      failure: () => failure,
      stop: async () => {
        state.stopped = true;
        await done;
      },
    };
  }

  it('keeps taking acks=all produces with one node down, and the node rejoins the ISR', async () => {
    const c = cluster;
    if (!c) throw new Error('no private cluster');
    expect(c.username).toBeDefined();
    expect(c.caFile && existsSync(c.caFile)).toBeTruthy();
    expect(c.bridgeEnv().BRIDGE_KAFKA_SASL_MECHANISM).toBe('scram-sha-512');

    const topic = `faults-${uniqueId()}`;
    await c.createTopic(topic, { partitions: 3 });
    expect((await c.describeTopic(topic)).map((p) => p.isr.length)).toEqual([3, 3, 3]);

    const producer = c
      .client({ retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1_000 } })
      .producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const load = startLoad(producer, topic);
    const progress = async (what: string, more = 20): Promise<void> => {
      const target = load.acknowledged.length + more;
      await waitFor(
        () => {
          if (load.failure()) throw load.failure();
          return load.acknowledged.length >= target;
        },
        { timeoutMs: 30_000, what },
      );
    };
    try {
      await progress('produces before the kill');

      {
        const victim = await c.leaderOf(topic, 0);
        if (!victim) throw new Error('no leader of partition 0');
        const pid = victim.pid;
        await victim.kill();
        expect(victim.running).toBe(false);
        expect(isProcessAlive(pid ?? -1)).toBe(false);

        const moved = await c.waitForLeaders(topic, { excluding: [victim.id], timeoutMs: 30_000 });
        for (const p of moved) expect(p.isr).not.toContain(victim.id);
        await progress(`produces with node ${victim.id} down`);

        await victim.start();
        expect(victim.running).toBe(true);
        await c.waitForIsr(topic, 3);
        await progress(`produces after node ${victim.id} rejoined`);
      }
    } finally {
      await load.stop();
      await producer.disconnect();
    }
    expect(load.failure()).toBeUndefined();

    // Nothing acknowledged is missing.
    const consumer = c.client().consumer({ groupId: `faults-${uniqueId()}` });
    const received = new Set<string>();
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message }) => {
          received.add(message.value?.toString() ?? '');
          return Promise.resolve();
        },
      });
      await waitFor(() => load.acknowledged.every((value) => received.has(value)), {
        timeoutMs: 30_000,
        what: 'every acknowledged record',
      });
    } finally {
      await consumer.disconnect();
    }
  }, 150_000);
});

/**
 * A production-like Kafka (issue 11): a PRIVATE three-node KRaft cluster of this file with
 * SASL_SSL client listeners (SCRAM-SHA-512, its own CA), replication factor 3 and
 * min.insync.replicas 2. The bridge runs as a real process configured only through the
 * BRIDGE_KAFKA_* variables a user would set.
 *
 * - Refused access: a wrong password and an untrusted certificate are one clear log line each,
 *   readiness 503 with the reason, and the bridge keeps trying (it gets in once the user exists).
 * - Brokers dying: under QoS 1 and QoS 2 load, the leader of the busiest partitions is killed
 *   (SIGKILL), restarted, then another is; commands flow to devices meanwhile. Every
 *   acknowledged message is in Kafka, no QoS 2 message twice, per-key order kept, no command
 *   lost; readiness follows the cluster; the retained topic is read at the next start.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import mqtt from 'mqtt';
import type { Producer } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeProcess, stopAllBridgeProcesses, type Health } from '../support/bridge-process.js';
import { uniqueId } from '../support/kafka-helpers.js';
import { kafkaToolsClasspath, runTool } from '../support/kafka-tools.js';
import { startPrivateCluster, type PrivateCluster } from '../support/private-cluster.js';
import {
  checkStreams,
  readAllRecords,
  reportLine,
  StreamDevice,
} from '../support/stream-devices.js';
import { waitFor } from '../support/wait-for.js';

let cluster: PrivateCluster | undefined;

beforeAll(async () => {
  cluster = await startPrivateCluster({ nodes: 3, security: 'sasl-ssl' });
}, 180_000);

afterAll(async () => {
  await stopAllBridgeProcesses();
  await cluster?.destroy();
});

function theCluster(): PrivateCluster {
  if (!cluster) throw new Error('private cluster not started');
  return cluster;
}

/** Readiness once it is 503 saying that Kafka refused the bridge. */
function refusedReadiness(bridge: BridgeProcess): Promise<Health> {
  return waitFor(
    async () => {
      const state = await bridge.health();
      return state.status === 503 && state.reason?.includes('refused the bridge')
        ? state
        : undefined;
    },
    { timeoutMs: 30_000, what: 'readiness 503 saying that Kafka refused the bridge' },
  );
}

/** The bridge's error lines that say Kafka refused it. */
function refusals(bridge: BridgeProcess): string[] {
  return bridge
    .logLines()
    .filter((line) => (line.level ?? 0) >= 50 && String(line.msg).includes('refused the bridge'))
    .map((line) => String(line.msg));
}

/**
 * Adds a SCRAM-SHA-512 user with Kafka's own tool (kafka-configs), as an operator would,
 * authenticated as the cluster's admin user.
 */
async function addScramUser(username: string, password: string): Promise<void> {
  const kafka = theCluster();
  const config = path.join(kafka.dataDir, `admin-${uniqueId()}.properties`);
  await writeFile(
    config,
    [
      'security.protocol=SASL_SSL',
      'sasl.mechanism=SCRAM-SHA-512',
      `sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${kafka.username ?? ''}" password="${kafka.password ?? ''}";`,
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${kafka.caFile ?? ''}`,
      '',
    ].join('\n'),
  );
  await runTool(await kafkaToolsClasspath(), 'org.apache.kafka.tools.ConfigCommand', [
    '--bootstrap-server',
    kafka.brokers,
    '--command-config',
    config,
    '--alter',
    '--add-config',
    `SCRAM-SHA-512=[password=${password}]`,
    '--entity-type',
    'users',
    '--entity-name',
    username,
  ]);
}

const UPLINK_ONLY = (topic: string): string =>
  `uplink:\n  - name: up\n    from: up/{device}\n    to: { topic: ${topic}, key: '{device}' }\n`;

describe('a SASL_SSL Kafka that refuses the bridge', () => {
  it('a user Kafka does not know: one clear line, readiness 503 with the reason, and in once the user exists', async () => {
    const kafka = theCluster();
    const topic = `secured-${uniqueId()}`;
    await kafka.createTopic(topic, { partitions: 1 });
    const username = `late-${uniqueId()}`;
    const password = `pw-${uniqueId()}`;
    const bridge = await BridgeProcess.start({
      brokers: kafka.brokers,
      mappings: UPLINK_ONLY(topic),
      env: {
        ...kafka.bridgeEnv(),
        BRIDGE_KAFKA_SASL_USERNAME: username,
        BRIDGE_KAFKA_SASL_PASSWORD: password,
      },
      until: 'http',
    });
    const refused = await refusedReadiness(bridge);
    expect(refused.reason).toMatch(/^Kafka at 127\.0\.0\.1:\d+ refused the bridge: .*SASL/);
    // tried again (every 5 s) and still said once
    await delay(11_000);
    expect(refusals(bridge)).toHaveLength(1);
    expect(refusals(bridge)[0]).toMatch(
      /127\.0\.0\.1:\d+ refused the bridge: .*authentication failed/i,
    );
    expect(refusals(bridge)[0]).toContain('kafka.sasl');
    expect(bridge.stdout + bridge.stderr).not.toContain(password);

    await addScramUser(username, password);
    await waitFor(async () => (await bridge.health()).status === 200, {
      timeoutMs: 30_000,
      what: 'the bridge to get in and be ready',
    });
    await waitFor(() => bridge.logLines().some((line) => line.msg === 'bridge listening'), {
      what: 'the MQTT listeners',
    });
  }, 90_000);

  it('a broker certificate the bridge does not trust: one clear line naming the cause, readiness 503', async () => {
    const kafka = theCluster();
    const env = kafka.bridgeEnv();
    delete env.BRIDGE_KAFKA_SSL_CA_FILE; // the system's authorities do not know the cluster's CA
    const bridge = await BridgeProcess.start({
      brokers: kafka.brokers,
      mappings: UPLINK_ONLY(`untrusted-${uniqueId()}`),
      env,
      until: 'http',
    });
    const refused = await refusedReadiness(bridge);
    expect(refused.reason).toMatch(/certificate not trusted \(SELF_SIGNED_CERT_IN_CHAIN\)/);
    // the line reaches the test's pipe after readiness may have answered; then a retry, still one
    await waitFor(() => refusals(bridge).length > 0, { what: 'the refusal log line' });
    await delay(6_000);
    expect(refusals(bridge)).toHaveLength(1);
    expect(bridge.stdout + bridge.stderr).not.toContain(kafka.password ?? '?');
  }, 60_000);
});

describe('faults: brokers of a three-node cluster die', () => {
  it('leaders killed and restarted under QoS 1/2 load: nothing acknowledged lost, nothing written twice, no command lost', async () => {
    const kafka = theCluster();
    const upTopic = `cluster-up-${uniqueId()}`;
    const commandTopic = `cluster-cmd-${uniqueId()}`;
    const retainedTopic = `cluster-retained-${uniqueId()}`;
    await kafka.createTopic(upTopic, { partitions: 6 });
    await kafka.createTopic(commandTopic, { partitions: 3 });
    const prefix = `c${uniqueId()}`;
    const mappings = `
uplink:
  - name: stream
    from: ${prefix}/{device}/data
    to: { topic: ${upTopic}, key: '{device}' }
downlink:
  - name: commands
    from: ${commandTopic}
    to: { topic: '${prefix}/{key}/cmd', qos: 1 }
`;
    const env = {
      ...kafka.bridgeEnv(),
      BRIDGE_RETAINED_TOPIC: retainedTopic,
      BRIDGE_DOWNLINK_GROUP_ID: `cluster-${uniqueId()}`,
    };
    let bridge = await BridgeProcess.start({ brokers: kafka.brokers, mappings, env });

    const states: Array<{ at: number; status: number }> = [];
    const polling = { on: true };
    const poller = (async () => {
      while (polling.on) {
        const { status } = await bridge.health();
        if (states.at(-1)?.status !== status) states.push({ at: Date.now(), status });
        await delay(200);
      }
    })();

    // a retained message, written before the faults, read back at the next start
    const setter = await mqtt.connectAsync({ port: bridge.mqttPort, host: '127.0.0.1' });
    await setter.publishAsync(`${prefix}/config`, 'retained-v1', { qos: 1, retain: true });
    await setter.endAsync();

    // command receivers: persistent sessions, one per key
    const receivers = await Promise.all(
      Array.from({ length: 6 }, async (_, index) => {
        const key = `dev${index}`;
        const client = await mqtt.connectAsync({
          port: bridge.mqttPort,
          host: '127.0.0.1',
          clientId: `${prefix}-${key}`,
          clean: false,
          reconnectPeriod: 500,
        });
        const got: number[] = [];
        client.on('message', (_topic, payload) => got.push(Number(payload.toString())));
        await client.subscribeAsync(`${prefix}/${key}/cmd`, { qos: 1 });
        return { key, client, got };
      }),
    );
    const commands = kafka.client().producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await commands.connect();
    const written = new Map<string, number>(receivers.map(({ key }) => [key, 0]));
    const writing = { on: true };
    const writer = writeCommands(commands, commandTopic, written, writing);

    const devices = await Promise.all(
      ([1, 1, 1, 1, 1, 2, 2, 2, 2, 2] as const).map((qos, index) => {
        const clientId = `${prefix}-q${qos}-${index}`;
        return new StreamDevice({
          port: bridge.mqttPort,
          clientId,
          topic: `${prefix}/${clientId}/data`,
          protocolVersion: index % 2 === 0 ? 4 : 5,
          qos,
          mqtt: { clean: false, reconnectPeriod: 500, keepalive: 30 },
        }).connected();
      }),
    );
    const acked = (): number => devices.reduce((sum, device) => sum + device.acked.size, 0);
    const flowing = async (more: number, what: string): Promise<void> => {
      const from = acked();
      await waitFor(() => acked() >= from + more, { timeoutMs: 60_000, intervalMs: 100, what });
    };
    const killed: number[] = [];
    try {
      for (const device of devices) device.stream({ intervalMs: 20, window: 200 });
      await flowing(500, 'the streams to flow');

      for (const round of [1, 2]) {
        const victim = await busiestLeader(kafka, upTopic);
        killed.push(victim);
        await kafka.node(victim).kill();
        await flowing(1_000, `acknowledgements with node ${victim} dead (round ${round})`);
        await kafka.node(victim).start();
        await kafka.waitForIsr(upTopic, 3);
        await flowing(300, `acknowledgements after node ${victim} is back`);
      }

      // two of three down: acks=all cannot be met (min.insync.replicas 2): not ready, then back
      const first = await busiestLeader(kafka, upTopic);
      const other = kafka.nodes.find((node) => node.id !== first)?.id ?? -1;
      await kafka.node(first).kill();
      await kafka.node(other).kill();
      await waitFor(() => states.at(-1)?.status === 503, {
        timeoutMs: 40_000,
        what: 'readiness 503 while the cluster cannot take writes',
      });
      await kafka.node(first).start();
      await kafka.node(other).start();
      await kafka.waitForIsr(upTopic, 3);
      await flowing(300, 'acknowledgements once the cluster is whole');
      await waitFor(() => states.at(-1)?.status === 200, {
        timeoutMs: 30_000,
        what: 'readiness back at 200',
      });

      for (const device of devices) device.stopStream();
      await Promise.all(devices.map((device) => device.settled(90_000)));
      writing.on = false;
      await writer;
      // every command reaches its device, in order
      await waitFor(
        () => receivers.every(({ key, got }) => new Set(got).size >= (written.get(key) ?? 0)),
        { timeoutMs: 60_000, what: 'every command at its device' },
      ).catch(async (error: unknown) => {
        // missing at the device: is it in Kafka (the bridge lost it) or not (the writer did)?
        const inKafka = await readAllRecords(
          kafka.brokers.split(','),
          commandTopic,
          30_000,
          kafka.clientSecurity,
        );
        const counts = receivers.map(({ key, got }) => {
          const missing = Array.from({ length: written.get(key) ?? 0 }, (_, seq) => seq).filter(
            (seq) => !got.includes(seq),
          );
          const where = missing.slice(0, 5).map((seq) => {
            const found = inKafka.filter(
              (r) => r.key === key && r.value.toString() === String(seq),
            );
            return `${seq}@${found.map((r) => `${r.partition}:${r.offset}`).join('|') || 'not in Kafka'}`;
          });
          return `${key}: ${new Set(got).size}/${written.get(key) ?? 0} missing [${where.join(',')}]`;
        });
        throw new Error(
          `${(error as Error).message} (received/written ${counts.join(', ')}; bridge: ${bridge.problems().join('; ')})`,
        );
      });
      polling.on = false;
      await poller;

      const records = await readAllRecords(
        kafka.brokers.split(','),
        upTopic,
        60_000,
        kafka.clientSecurity,
      );
      const report = checkStreams(devices, records);
      const qos2 = devices.filter((device) => device.qos === 2);
      const qos2Report = checkStreams(
        qos2,
        records.filter((record) =>
          qos2.some((device) => record.key === device.topic.split('/')[1]),
        ),
      );
      console.log(
        reportLine('cluster', report, {
          killed: killed.join(','),
          qos2duplicates: qos2Report.duplicates,
          commands: [...written.values()].reduce((sum, count) => sum + count, 0),
          readiness: states.map((state) => state.status).join('→'),
          bridge: bridge.problems().join('; '),
        }),
      );
      const firstArrivals = receivers.map(({ got }) => [...new Set(got)]);
      expect({
        lostAcked: report.lostAcked,
        orderViolations: report.orderViolations,
        unexplainedDuplicates: report.unexplainedDuplicates,
        qos2Duplicates: qos2Report.duplicates,
        foreign: report.foreign,
        commandsInOrder: firstArrivals.every((got) => got.every((seq, index) => seq === index)),
        commandsComplete: receivers.every(
          ({ key }, index) => firstArrivals[index]?.length === written.get(key),
        ),
      }).toEqual({
        lostAcked: 0,
        orderViolations: 0,
        unexplainedDuplicates: 0,
        qos2Duplicates: 0,
        foreign: 0,
        commandsInOrder: true,
        commandsComplete: true,
      });
      expect(report.acked).toBeGreaterThan(2_000);
      expect(states.map((state) => state.status)).toContain(503);

      // the retained topic (replicated, its leaders moved) is read at the next start
      await bridge.stop();
      bridge = await BridgeProcess.start({ brokers: kafka.brokers, mappings, env });
      const reader = await mqtt.connectAsync({ port: bridge.mqttPort, host: '127.0.0.1' });
      const retained = new Promise<string>((resolve) => {
        reader.once('message', (_topic, payload) => {
          resolve(payload.toString());
        });
      });
      await reader.subscribeAsync(`${prefix}/config`, { qos: 1 });
      expect(await retained).toBe('retained-v1');
      await reader.endAsync();
    } finally {
      // to see what the bridge did when this fails: DEBUG_BRIDGE_LOG=/tmp/bridge.log
      if (process.env.DEBUG_BRIDGE_LOG)
        await writeFile(process.env.DEBUG_BRIDGE_LOG, bridge.stdout);
      polling.on = false;
      writing.on = false;
      await Promise.all(devices.map((device) => device.end()));
      await Promise.all(receivers.map(({ client }) => client.endAsync(true)));
      await commands.disconnect();
      for (const node of kafka.nodes) if (!node.running) await node.start().catch(() => undefined);
    }
  }, 420_000);
});

/** The node leading most partitions of `topic`. */
async function busiestLeader(kafka: PrivateCluster, topic: string): Promise<number> {
  const counts = new Map<number, number>();
  for (const { leader } of await kafka.describeTopic(topic)) {
    if (leader >= 0) counts.set(leader, (counts.get(leader) ?? 0) + 1);
  }
  const [busiest] = [...counts].sort((a, b) => b[1] - a[1]);
  if (!busiest) throw new Error(`no leaders for ${topic}`);
  return busiest[0];
}

/**
 * Writes numbered commands for every key, one key after the other, while `writing.on`; a command
 * counts as written once Kafka acknowledged it. A failed send is tried again, the same command,
 * before anything else: after a failure whose outcome is unknown KafkaJS reuses the sequence
 * number, so a *different* record sent next to the same partition would be taken by Kafka for
 * the stored one and dropped as a duplicate (the missing commands "not in Kafka" of earlier runs).
 */
async function writeCommands(
  producer: Producer,
  topic: string,
  written: Map<string, number>,
  writing: { on: boolean },
): Promise<void> {
  // read through a call: the test turns it off while sends are awaited
  const on = (): boolean => writing.on;
  while (on()) {
    for (const [key, count] of written) {
      while (on()) {
        try {
          const results = await producer.send({
            topic,
            acks: -1,
            messages: [{ key, value: String(count) }],
          });
          // KafkaJS resolves without sending when its metadata lacks the partition's leader
          if (results.length > 0) {
            written.set(key, count + 1);
            break;
          }
        } catch {
          // the cluster cannot take it now (two nodes down): the same command again
        }
        await delay(100);
      }
    }
    await delay(50);
  }
}

/**
 * `npm run fuzz -- --minutes N [--seed S] [--concurrency C] [--from I]` — the fuzz test of the
 * MQTT front end (test/integration/fuzz.test.ts) for as long as asked: random bytes and mutated
 * packets of every type for MQTT 3.1, 3.1.1 and 5.0 over real sockets to a bridge process of its
 * own, while two well-behaved clients publish QoS 1 and receive each other's messages.
 *
 * Kafka: BRIDGE_KAFKA_BROKERS, else the local Kafka of `npm run kafka:start`, else one started
 * for the run (as `npm run dev`). Prints the seed, the cases played, who closed the connections,
 * the heap (after a full collection) and RSS of the bridge before and after, and every case the
 * bridge handled wrongly (with its bytes). Exits 1 on a crash, an unhandled error, a case
 * handled wrongly or a message the good clients lost.
 */
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import mqtt, { type MqttClient } from 'mqtt';
import { BridgeProcess } from '../test/support/bridge-process.js';
import {
  collectGarbage,
  inspectorUrl,
  runFuzz,
  SteadyTraffic,
  type FuzzReport,
} from '../test/support/fuzz-packets.js';
import { waitFor } from '../test/support/wait-for.js';
import { useOrStartKafka } from './kafka/use-or-start.js';

const MAX_PACKET_SIZE = 65_536;
const SERVER_TIMEOUT_MS = 10_000;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '8' },
    from: { type: 'string', default: '0' },
  },
});
const minutes = Number(values.minutes);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 32);
const concurrency = Number(values.concurrency);
const from = Number(values.from);
if (
  !(minutes > 0) ||
  !Number.isInteger(seed) ||
  seed < 0 ||
  seed >= 2 ** 32 ||
  !(concurrency > 0)
) {
  console.error('usage: npm run fuzz -- --minutes N [--seed 0..4294967295] [--concurrency C]');
  process.exit(2);
}

const mb = (bytes: number): string => `${(bytes / 1_048_576).toFixed(1)} MB`;

async function memory(
  bridge: BridgeProcess,
  inspector: string,
): Promise<{ heap: number; rss: number }> {
  await collectGarbage(inspector);
  return { heap: await bridge.metric('nodejs_heap_size_used_bytes'), rss: bridge.rssBytes() };
}

async function main(): Promise<number> {
  console.log(`fuzz: seed ${seed}, ${minutes} min, ${concurrency} connections at once`);
  const kafkaStarted = await useOrStartKafka();
  const kafka = new Kafka({ brokers: kafkaStarted.brokers.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = `fuzz.${seed.toString(16)}.${Date.now().toString(36)}`;
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  let bridge: BridgeProcess | undefined;
  const good: MqttClient[] = [];
  try {
    bridge = await BridgeProcess.start({
      brokers: kafkaStarted.brokers,
      mappings: `uplink:\n  - name: fuzz\n    from: fuzz/{device}/data\n    to: { topic: ${topic}, key: '{device}' }\n`,
      env: {
        BRIDGE_AUTH_ALLOW_ANONYMOUS: 'true',
        BRIDGE_MQTT_MAX_PACKET_SIZE: String(MAX_PACKET_SIZE),
        BRIDGE_MQTT_MAX_SESSION_EXPIRY: '1',
        // the fuzzer opens connections from one address faster than the default allows
        BRIDGE_MQTT_MAX_CONNECT_RATE: '0',
        NODE_OPTIONS: '--inspect=127.0.0.1:0',
      },
    });
    const running = bridge;
    const inspector = await waitFor(() => inspectorUrl(running.stderr), { what: 'the inspector' });
    const topics = ['fuzz/good-a/data', 'fuzz/good-b/data'];
    for (const [index, protocolVersion] of [4, 5].entries()) {
      good.push(
        await mqtt.connectAsync({
          host: '127.0.0.1',
          port: running.mqttPort,
          clientId: `good-${seed}-${index}`,
          protocolVersion: protocolVersion as 4 | 5,
          reconnectPeriod: 0,
        }),
      );
    }
    const traffic = new SteadyTraffic(good, topics);
    await traffic.start();
    await waitFor(() => traffic.totalAcked >= 20, { what: 'the good clients to publish' });

    const options = {
      port: running.mqttPort,
      seed,
      concurrency,
      timeoutMs: SERVER_TIMEOUT_MS,
      maxPacketSize: MAX_PACKET_SIZE,
    };
    const warmUp = await runFuzz({ ...options, from: 2 ** 31, iterations: 1_000 });
    const connections = (): Promise<number> => running.metric('bridge_mqtt_connections');
    await waitFor(async () => (await connections()) === 2, { what: 'warm-up connections gone' });
    const before = await memory(running, inspector);
    console.log(`before: heap ${mb(before.heap)}, RSS ${mb(before.rss)}`);

    let lastPrint = Date.now();
    let crashed = false;
    const deadline = Date.now() + minutes * 60_000;
    const report: FuzzReport = await runFuzz({
      ...options,
      from,
      deadline,
      onCase: (fuzzCase) => {
        if (!running.running && !crashed) {
          crashed = true;
          console.log(`the bridge exited during case ${fuzzCase.index}`);
        }
        if (Date.now() - lastPrint < 10_000) return;
        lastPrint = Date.now();
        console.log(
          `  ${fuzzCase.index - from + 1} cases, ${traffic.totalAcked} good QoS 1 acknowledged, RSS ${mb(running.running ? running.rssBytes() : 0)}`,
        );
      },
    });
    if (!running.running) {
      console.log(`CRASH: the bridge exited:\n${running.stderr.slice(-4000)}`);
      return 1;
    }
    const closedBack = await waitFor(async () => (await connections()) === 2, {
      what: 'fuzz connections gone',
    }).then(
      () => true,
      () => false,
    );
    const ackedAfterFuzz = traffic.totalAcked;
    await waitFor(() => traffic.totalAcked >= ackedAfterFuzz + 50, {
      what: 'the good clients to go on publishing',
    }).catch(() => undefined);
    await traffic.stop();
    await waitFor(() => traffic.missing().length === 0, { timeoutMs: 10_000 }).catch(
      () => undefined,
    );
    let after = await memory(running, inspector);
    await waitFor(
      async () => {
        after = await memory(running, inspector);
        return after.heap <= before.heap * 1.15;
      },
      { timeoutMs: 15_000, intervalMs: 500 },
    ).catch(() => undefined);

    const unhandledLines = running
      .logLines()
      .filter((line) => (line.level ?? 0) >= 50 && /unhandled|uncaught/i.test(line.msg ?? ''));
    const unhandled = await running.metric('bridge_unhandled_errors_total');
    const missing = traffic.missing();
    console.log(
      [
        `seed ${seed}: ${report.iterations} cases in ${(report.elapsedMs / 1000).toFixed(0)} s ` +
          `(${((report.iterations * 1000) / report.elapsedMs).toFixed(0)}/s), warm-up ${warmUp.iterations}`,
        `connections closed by the bridge ${report.closedByServer}, by the client ${report.closedByClient}; ` +
          `all gone afterwards: ${closedBack}`,
        `heap ${mb(before.heap)} → ${mb(after.heap)} (×${(after.heap / before.heap).toFixed(2)}), ` +
          `RSS ${mb(before.rss)} → ${mb(after.rss)} (×${(after.rss / before.rss).toFixed(2)})`,
        `good clients: ${traffic.totalAcked} QoS 1 acknowledged, ${missing.length} not received, ` +
          `${traffic.errors.length} errors`,
        `unhandled errors: ${unhandled} (log lines: ${unhandledLines.length}); cases handled wrongly: ${report.problems.length + warmUp.problems.length}`,
        `bridge log: ${running.problems().join('; ') || 'clean'}`,
      ].join('\n'),
    );
    for (const problem of [...warmUp.problems, ...report.problems].slice(0, 20)) {
      console.log(`\n${problem}`);
    }
    const failed =
      unhandled > 0 ||
      unhandledLines.length > 0 ||
      report.problems.length + warmUp.problems.length > 0 ||
      missing.length > 0 ||
      traffic.errors.length > 0 ||
      !closedBack;
    return failed ? 1 : 0;
  } finally {
    await Promise.all(good.map((client) => client.endAsync(true)));
    await bridge?.stop();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
    await kafkaStarted.started?.stop();
  }
}

main().then(
  (code) => {
    process.exit(code);
  },
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

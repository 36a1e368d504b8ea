/**
 * `npm run bench` — uplink throughput, acknowledgement latency and memory against a real Kafka.
 *
 * The bridge runs in this process; MQTT.js clients publish to it over loopback TCP, so clients
 * and bridge share the machine's cores: the figures are a floor, and meaningful as ratios
 * between scenarios of one run. Kafka: as for `npm run dev` (BRIDGE_KAFKA_BROKERS, a running
 * `npm run kafka:start`, or a local Kafka started and stopped here).
 *
 *   BENCH_MESSAGES   messages per scenario (default 50000)
 *   BENCH_CLIENTS    publishing connections (default 10)
 *   BENCH_PAYLOAD    payload bytes (default 200)
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Bridge } from '../../src/bridge.js';
import { percentile, runBenchmark, startBenchBridge } from './bench-bridge.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 50_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 10);
const PAYLOAD = Buffer.alloc(Number(process.env.BENCH_PAYLOAD ?? 200), 'x');
/** QoS 1 publishes each client keeps unacknowledged at once under load. */
const WINDOW = 100;
/** Sequential QoS 1 publishes of one client, for latency without queueing. */
const LATENCY_MESSAGES = 2_000;

interface Result {
  scenario: string;
  messages: number;
  seconds: number;
  perSecond: number;
  ackP50Ms?: number;
  ackP99Ms?: number;
  rssMb: number;
}

async function connectAll(
  port: number,
  protocolVersion: 4 | 5,
  count = CLIENTS,
): Promise<MqttClient[]> {
  return Promise.all(
    Array.from({ length: count }, (_, index) =>
      mqtt.connectAsync({
        host: '127.0.0.1',
        port,
        protocolVersion,
        clientId: `bench-${protocolVersion}-${index}-${Date.now()}`,
        reconnectPeriod: 0,
      }),
    ),
  );
}

interface Qos1Load {
  protocolVersion: 4 | 5;
  clients: number;
  window: number;
  messages: number;
  /** Retained publishes: acknowledged once their retained record is in Kafka too. */
  retain?: boolean;
}

/** QoS 1: each client keeps `window` publishes in flight; latency = publish → PUBACK. */
async function qos1(port: number, load: Qos1Load): Promise<Result> {
  const { protocolVersion, window } = load;
  const clients = await connectAll(port, protocolVersion, load.clients);
  const perClient = Math.ceil(load.messages / load.clients);
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    clients.map(async (client, index) => {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < perClient) {
          const sequence = next++;
          const sent = performance.now();
          await client.publishAsync(`bench/d${index}/telemetry/${sequence % 10}`, PAYLOAD, {
            qos: 1,
            retain: load.retain === true,
          });
          latencies.push(performance.now() - sent);
        }
      };
      await Promise.all(Array.from({ length: window }, lane));
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(clients.map((client) => client.endAsync()));
  latencies.sort((a, b) => a - b);
  return {
    scenario: `QoS 1${load.retain ? ' retained' : ''}, MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}, ${load.clients}×${window} in flight`,
    messages: latencies.length,
    seconds: Number(seconds.toFixed(2)),
    perSecond: Math.round(latencies.length / seconds),
    ackP50Ms: Number(percentile(latencies, 50).toFixed(2)),
    ackP99Ms: Number(percentile(latencies, 99).toFixed(2)),
    rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
  };
}

/** QoS 0: clients write as fast as TCP takes it; done when Kafka acknowledged every record. */
async function qos0(port: number, bridge: Bridge): Promise<Result> {
  const clients = await connectAll(port, 4);
  const produced = async (): Promise<number> =>
    (await bridge.metrics.kafkaRecordsProduced.get()).values[0]?.value ?? 0;
  const before = await produced();
  const perClient = Math.ceil(MESSAGES / CLIENTS);
  const started = performance.now();
  for (let sequence = 0; sequence < perClient; sequence++) {
    for (const [index, client] of clients.entries()) {
      client.publish(`bench/d${index}/telemetry/x`, PAYLOAD, { qos: 0 });
    }
    if (sequence % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const total = perClient * CLIENTS;
  while ((await produced()) - before < total)
    await new Promise((resolve) => setTimeout(resolve, 5));
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(clients.map((client) => client.endAsync()));
  return {
    scenario: `QoS 0, MQTT 3.1.1, ${CLIENTS} clients`,
    messages: total,
    seconds: Number(seconds.toFixed(2)),
    perSecond: Math.round(total / seconds),
    rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
  };
}

async function main(): Promise<void> {
  const bench = await startBenchBridge(
    (topic) =>
      `uplink:\n  - name: bench\n    from: bench/{device}/telemetry/#\n    to: { topic: ${topic}, key: "{device}" }\n`,
    // retained messages kept in Kafka, for the retained scenario
    { retained: { topic: `bench.retained.${Date.now().toString(36)}` } },
  );
  const { bridge } = bench;
  const port = bridge.addresses.mqtt.port;
  const rssStart = Math.round(process.memoryUsage().rss / 2 ** 20);
  try {
    const loaded = { clients: CLIENTS, window: WINDOW, messages: MESSAGES };
    await qos1(port, { protocolVersion: 4, ...loaded }); // warm-up: JIT, connections, metadata
    const results = [
      await qos1(port, { protocolVersion: 4, clients: 1, window: 1, messages: LATENCY_MESSAGES }),
      await qos1(port, {
        protocolVersion: 4,
        clients: 1,
        window: 1,
        messages: LATENCY_MESSAGES,
        retain: true,
      }),
      await qos0(port, bridge),
      await qos1(port, { protocolVersion: 4, ...loaded }),
      await qos1(port, { protocolVersion: 5, ...loaded }),
    ];
    console.log(
      `\nuplink bench: ${MESSAGES} messages × ${PAYLOAD.length} B, ${CLIENTS} clients, ` +
        `QoS 1 window ${WINDOW}/client, Kafka ${bench.brokers}, RSS at start ${rssStart} MB`,
    );
    console.table(results);
  } finally {
    await bench.stop();
  }
}

runBenchmark(main);

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
 *   BENCH_COMPRESSION kafka.compression values for the compression scenario, comma-separated
 *                    (default none,gzip,snappy,lz4,zstd; empty: skip it)
 *
 * The compression scenario starts one bridge per codec (kafka.compression, the config option
 * behind BRIDGE_KAFKA_COMPRESSION) and runs the same QoS 1 load with JSON telemetry payloads
 * (about 190 bytes, varying values: compressible as real telemetry is, unlike the fixed
 * payload of the other scenarios); it reports msg/s, PUBACK latency and the bytes the bridge
 * wrote to its Kafka connections.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Bridge } from '../../src/bridge.js';
import type { BridgeConfig } from '../../src/config/load.js';
import {
  percentile,
  runBenchmark,
  startBenchKafka,
  startBridge,
  type BenchKafka,
} from './bench-bridge.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 50_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 10);
const PAYLOAD = Buffer.alloc(Number(process.env.BENCH_PAYLOAD ?? 200), 'x');
/** QoS 1 publishes each client keeps unacknowledged at once under load. */
const WINDOW = 100;
/** Sequential QoS 1 publishes of one client, for latency without queueing. */
const LATENCY_MESSAGES = 2_000;

type Compression = BridgeConfig['kafka']['compression'];
const CODECS: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const COMPRESSION = (process.env.BENCH_COMPRESSION ?? CODECS.join(','))
  .split(',')
  .map((name) => name.trim())
  .filter((name) => name.length > 0)
  .map((name) => {
    if (!(CODECS as readonly string[]).includes(name))
      throw new Error(`BENCH_COMPRESSION: ${name} is none of ${CODECS.join(', ')}`);
    return name as Compression;
  });

/** A device's JSON telemetry reading (about 190 bytes): field names repeat, values vary. */
function telemetry(device: number, sequence: number): Buffer {
  const reading = {
    device: `bench-device-${device}`,
    seq: sequence,
    ts: Date.now(),
    celsius: Math.round((18 + Math.random() * 8) * 100) / 100,
    humidity: Math.round((30 + Math.random() * 40) * 10) / 10,
    pressure: Math.round(990 + Math.random() * 40),
    battery: Math.round((3.3 + Math.random() * 0.9) * 1000) / 1000,
    rssi: -40 - Math.floor(Math.random() * 50),
    status: 'ok',
    firmware: '1.4.2',
  };
  return Buffer.from(JSON.stringify(reading));
}

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
  /** The payload of a client's publish (default: PAYLOAD). */
  payload?: (client: number, sequence: number) => Buffer;
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
          const payload = load.payload?.(index, sequence) ?? PAYLOAD;
          await client.publishAsync(`bench/d${index}/telemetry/${sequence % 10}`, payload, {
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

const MAPPINGS = (topic: string): string =>
  `uplink:\n  - name: bench\n    from: bench/{device}/telemetry/#\n    to: { topic: ${topic}, key: "{device}" }\n`;

interface CompressionResult {
  compression: Compression;
  messages: number;
  seconds: number;
  perSecond: number;
  ackP50Ms?: number | undefined;
  ackP99Ms?: number | undefined;
  /** Bytes written to Kafka connections during the run. */
  kafkaMB: number;
  kafkaBytesPerMsg: number;
  vsNone: string;
}

/** The same QoS 1 load with telemetry payloads, through one bridge per codec. */
async function compressionScenario(bench: BenchKafka): Promise<CompressionResult[]> {
  const results: CompressionResult[] = [];
  for (const compression of COMPRESSION) {
    const { bridge, stop } = await startBridge(bench, MAPPINGS(bench.topic), {
      kafka: { compression },
    });
    try {
      const port = bridge.addresses.mqtt.port;
      const load = { protocolVersion: 4 as const, clients: CLIENTS, window: WINDOW };
      // warm-up: JIT, connections, metadata, the codec loaded
      await qos1(port, { ...load, messages: Math.ceil(MESSAGES / 5), payload: telemetry });
      const before = bench.bytesWritten();
      const result = await qos1(port, { ...load, messages: MESSAGES, payload: telemetry });
      const bytes = bench.bytesWritten() - before;
      results.push({
        compression,
        messages: result.messages,
        seconds: result.seconds,
        perSecond: result.perSecond,
        ackP50Ms: result.ackP50Ms,
        ackP99Ms: result.ackP99Ms,
        kafkaMB: Number((bytes / 1e6).toFixed(2)),
        kafkaBytesPerMsg: Math.round(bytes / result.messages),
        vsNone: '',
      });
    } finally {
      await stop();
    }
  }
  const none = results.find((result) => result.compression === 'none');
  for (const result of results) {
    if (none) result.vsNone = `${Math.round((100 * result.kafkaMB) / none.kafkaMB)} %`;
  }
  if (none && results.some((r) => r.compression !== 'none' && r.kafkaMB >= none.kafkaMB * 0.95))
    console.warn(
      'compression: a codec wrote about as many bytes as none; does the bridge pass kafka.compression to KafkaJS?',
    );
  return results;
}

async function main(): Promise<void> {
  const bench = await startBenchKafka();
  try {
    // retained messages kept in Kafka, for the retained scenario
    const { bridge, stop } = await startBridge(bench, MAPPINGS(bench.topic), {
      retained: { topic: `bench.retained.${Date.now().toString(36)}` },
    });
    const port = bridge.addresses.mqtt.port;
    const rssStart = Math.round(process.memoryUsage().rss / 2 ** 20);
    let results: Result[];
    try {
      const loaded = { clients: CLIENTS, window: WINDOW, messages: MESSAGES };
      await qos1(port, { protocolVersion: 4, ...loaded }); // warm-up: JIT, connections, metadata
      results = [
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
    } finally {
      await stop();
    }
    const compression = await compressionScenario(bench);
    console.log(
      `\nuplink bench: ${MESSAGES} messages × ${PAYLOAD.length} B, ${CLIENTS} clients, ` +
        `QoS 1 window ${WINDOW}/client, Kafka ${bench.brokers}, RSS at start ${rssStart} MB`,
    );
    console.table(results);
    if (compression.length > 0) {
      console.log(
        `\nkafka.compression: QoS 1, MQTT 3.1.1, ${CLIENTS}×${WINDOW} in flight, ${MESSAGES} ` +
          `JSON telemetry messages of ~${telemetry(0, 0).length} B; kafkaMB = bytes written to ` +
          `Kafka connections (produce requests, plus fetches and heartbeats)`,
      );
      console.table(compression);
    }
  } finally {
    await bench.stop();
  }
}

runBenchmark(main);

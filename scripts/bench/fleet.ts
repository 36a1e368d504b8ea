/**
 * `npm run bench:fleet` — sessions in Kafka (sessions.store kafka): uplink throughput of one
 * bridge process and of `start --workers 2`, and the time a client id takes to move between
 * two bridges (CONNECT on B → CONNACK with its session). The bridge runs in processes of its
 * own; the load comes from two generator processes (scripts/bench/generator.ts); CPU per message
 * is read from /proc for the bridge's processes.
 *
 *   BENCH_MESSAGES  QoS 1 messages per run (default 200000)
 *   BENCH_TAKEOVERS client id moves measured (default 200)
 */
import { connect } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { runBenchmark, startBenchKafka, type BenchKafka } from './bench-kafka.js';
import { startBridgeProcess, type BridgeProcess } from './bridge-process.js';
import { LatencyHistogram } from './histogram.js';
import { runLoad, type Load } from './load.js';
import { CpuMeter } from './os-stats.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 200_000);
const TAKEOVERS = Number(process.env.BENCH_TAKEOVERS ?? 200);
const GENERATORS = 2;
const CONNECTIONS = 50;
const WINDOW = 32;
const PAYLOAD = 256;

/** A bridge keeping its sessions in Kafka (topics of this run's `id`), as fleet instance `instance`. */
function startFleetBridge(
  bench: BenchKafka,
  id: string,
  instance: string,
  workers: number,
): Promise<BridgeProcess> {
  return startBridgeProcess({
    brokers: bench.brokers,
    mappings: `uplink:\n  - name: bench\n    from: bench/{device}/data\n    to: { topic: ${bench.topic}, key: '{device}' }\n`,
    workers,
    env: {
      BRIDGE_SESSIONS_STORE: 'kafka',
      BRIDGE_SESSIONS_TOPIC: `bench-sessions-${id}`,
      BRIDGE_SESSIONS_MESSAGES_TOPIC: `bench-messages-${id}`,
      BRIDGE_INSTANCE_ID: instance,
    },
  });
}

function load(port: number, messages: number, prefix: string): Load {
  return {
    mode: 'publish',
    port,
    procs: GENERATORS,
    connections: CONNECTIONS,
    prefix,
    qos: 1,
    window: WINDOW,
    payload: PAYLOAD,
    messages,
  };
}

async function uplink(bench: BenchKafka, workers: number): Promise<void> {
  const id = `${workers}w${Date.now()}`;
  const bridge = await startFleetBridge(bench, id, `bench-${id}`, workers);
  // warm-up: connections, metadata, JIT
  await runLoad(load(bridge.port, 20_000, `warm-${id}-`));
  const cpu = new CpuMeter(bridge.pids());
  const outcome = await runLoad(load(bridge.port, MESSAGES, `gen-${id}-`));
  const seconds = cpu.seconds();
  const acked = outcome.total('acked');
  console.log(
    `uplink QoS 1, ${workers} worker(s): ${Math.round(acked / outcome.seconds)} acknowledged msg/s, ` +
      `CPU ${((seconds * 1e6) / acked).toFixed(1)} µs/msg (${seconds.toFixed(1)} s), ` +
      `PUBACK p50 ${outcome.latency.percentile(50).toFixed(1)} ms, ` +
      `p99 ${outcome.latency.percentile(99).toFixed(1)} ms`,
  );
  await bridge.stop();
}

/** CONNECT on `port` for a persistent session; resolves with ms to CONNACK and its flag. */
function connectOnce(port: number, clientId: string): Promise<{ ms: number; present: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    let sentAt = 0;
    socket.once('connect', () => {
      sentAt = performance.now();
      socket.write(
        mqttPacket.generate(
          {
            cmd: 'connect',
            protocolId: 'MQTT',
            protocolVersion: 5,
            clientId,
            clean: false,
            keepalive: 60,
            properties: { sessionExpiryInterval: 60 },
          },
          { protocolVersion: 5 },
        ),
      );
    });
    parser.on('packet', (packet) => {
      if (packet.cmd !== 'connack') return;
      resolve({ ms: performance.now() - sentAt, present: packet.sessionPresent });
      // stays open: the next connect elsewhere takes it over
      socket.on('close', () => undefined);
    });
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.on('error', reject);
  });
}

async function takeover(bench: BenchKafka): Promise<void> {
  const id = `t${Date.now()}`;
  const a = await startFleetBridge(bench, id, `bench-a-${id}`, 1);
  const b = await startFleetBridge(bench, id, `bench-b-${id}`, 1);
  const times = new LatencyHistogram();
  let present = 0;
  for (let index = 0; index < TAKEOVERS; index++) {
    const clientId = `mover-${index}`;
    await connectOnce(a.port, clientId);
    const moved = await connectOnce(b.port, clientId);
    times.record(moved.ms);
    if (moved.present) present++;
  }
  console.log(
    `takeover A → B (${TAKEOVERS} client ids): CONNECT → CONNACK p50 ${times.percentile(50).toFixed(1)} ms, ` +
      `p99 ${times.percentile(99).toFixed(1)} ms; session present ${present}/${TAKEOVERS}`,
  );
  await a.stop();
  await b.stop();
}

runBenchmark(async () => {
  const bench = await startBenchKafka();
  try {
    console.log(
      `load: ${CONNECTIONS} connections from ${GENERATORS} generator processes, ${WINDOW} QoS 1 in flight each, ${PAYLOAD}-byte payloads, ${MESSAGES} messages; one rule to a 6-partition topic, key = device`,
    );
    await uplink(bench, 1);
    await uplink(bench, 2);
    await takeover(bench);
  } finally {
    await bench.stop();
  }
});

/**
 * `npm run bench:fleet` — sessions in Kafka (sessions.store kafka): uplink throughput of one
 * bridge process and of `start --workers 2`, and the time a client id takes to move between
 * two bridges (CONNECT on B → CONNACK with its session). The bridge runs in processes of its
 * own; the load comes from two generator processes (scripts/bench/load-generator.ts); CPU per
 * message is read from /proc for the bridge's processes.
 *
 *   BENCH_MESSAGES  QoS 1 messages per run (default 200000)
 *   BENCH_TAKEOVERS client id moves measured (default 200)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { findFreePort } from '../kafka/local-kafka.js';
import { percentile, runBenchmark, startBenchKafka, type BenchKafka } from './bench-bridge.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 200_000);
const TAKEOVERS = Number(process.env.BENCH_TAKEOVERS ?? 200);
const GENERATORS = 2;
const CONNECTIONS = 25;
const WINDOW = 32;
const PAYLOAD = 256;
const CLOCK_TICKS = 100;

interface RunningBridge {
  child: ChildProcess;
  port: number;
  folder: string;
}

async function startBridge(
  bench: BenchKafka,
  id: string,
  instance: string,
  workers: number,
): Promise<RunningBridge> {
  const folder = await mkdtemp(join(tmpdir(), 'bench-fleet-'));
  await writeFile(
    join(folder, 'rules.yaml'),
    `uplink:\n  - name: bench\n    from: bench/{device}/data\n    to: { topic: ${bench.topic}, key: '{device}' }\n`,
  );
  const port = await findFreePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'start', '--mappings', folder, '--workers', String(workers)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        PATH: process.env.PATH ?? '',
        BRIDGE_KAFKA_BROKERS: bench.brokers,
        BRIDGE_MQTT_HOST: '127.0.0.1',
        BRIDGE_MQTT_PORT: String(port),
        BRIDGE_HTTP_PORT: '0',
        BRIDGE_WEBSOCKET_ENABLED: 'false',
        BRIDGE_AUTH_ALLOW_ANONYMOUS: 'true',
        BRIDGE_SESSIONS_STORE: 'kafka',
        BRIDGE_SESSIONS_TOPIC: `bench-sessions-${id}`,
        BRIDGE_SESSIONS_MESSAGES_TOPIC: `bench-messages-${id}`,
        BRIDGE_INSTANCE_ID: instance,
        BRIDGE_LOG_LEVEL: 'info',
        // the whole load comes from one address
        BRIDGE_MQTT_MAX_CONNECTIONS_PER_ADDRESS: '0',
        BRIDGE_MQTT_MAX_CONNECT_RATE: '0',
      },
    },
  );
  let listening = 0;
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => {
      reject(new Error(`bridge exited (${code ?? '?'})`));
    });
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const lines = output.split('\n');
      output = lines.pop() ?? '';
      for (const line of lines) if (line.includes('"bridge listening"')) listening++;
      if (listening >= workers) resolve();
    });
  });
  child.stdout.resume();
  return { child, port, folder };
}

async function stopBridge(bridge: RunningBridge): Promise<void> {
  const exited = new Promise((resolve) => bridge.child.once('exit', resolve));
  bridge.child.kill('SIGTERM');
  await exited;
  await rm(bridge.folder, { recursive: true, force: true });
}

/** User + system CPU seconds of a process and its children (the workers). */
function cpuSeconds(pid: number): number {
  const pids = [pid, ...childrenOf(pid)];
  return pids.reduce((sum, one) => {
    try {
      const fields = readFileSync(`/proc/${one}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      return sum + (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    } catch {
      return sum;
    }
  }, 0);
}

function childrenOf(pid: number): number[] {
  try {
    const tasks = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return tasks === '' ? [] : tasks.split(' ').map(Number);
  } catch {
    return [];
  }
}

interface LoadResult {
  acked: number;
  seconds: number;
  p50: number;
  p99: number;
}

function generate(port: number, messages: number, prefix: string): Promise<LoadResult> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'scripts/bench/load-generator.ts',
      String(port),
      String(CONNECTIONS),
      String(WINDOW),
      String(PAYLOAD),
      String(messages),
      prefix,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`generator exited ${code ?? '?'}`));
      else resolve(JSON.parse(output.trim()) as LoadResult);
    });
  });
}

async function uplink(bench: BenchKafka, workers: number): Promise<void> {
  const id = `${workers}w${Date.now()}`;
  const bridge = await startBridge(bench, id, `bench-${id}`, workers);
  const pid = bridge.child.pid ?? 0;
  // warm-up: connections, metadata, JIT
  await generate(bridge.port, 20_000, `warm-${id}`);
  const cpuBefore = cpuSeconds(pid);
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: GENERATORS }, (_, index) =>
      generate(bridge.port, MESSAGES / GENERATORS, `gen${index}-${id}`),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuSeconds(pid) - cpuBefore;
  const acked = results.reduce((sum, result) => sum + result.acked, 0);
  console.log(
    `uplink QoS 1, ${workers} worker(s): ${Math.round(acked / seconds)} acknowledged msg/s, ` +
      `CPU ${((cpu * 1e6) / acked).toFixed(1)} µs/msg (${cpu.toFixed(1)} s), ` +
      `PUBACK p50 ${Math.max(...results.map((r) => r.p50)).toFixed(1)} ms, ` +
      `p99 ${Math.max(...results.map((r) => r.p99)).toFixed(1)} ms`,
  );
  await stopBridge(bridge);
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
  const a = await startBridge(bench, id, `bench-a-${id}`, 1);
  const b = await startBridge(bench, id, `bench-b-${id}`, 1);
  const times: number[] = [];
  let present = 0;
  for (let index = 0; index < TAKEOVERS; index++) {
    const clientId = `mover-${index}`;
    await connectOnce(a.port, clientId);
    const moved = await connectOnce(b.port, clientId);
    times.push(moved.ms);
    if (moved.present) present++;
  }
  times.sort((x, y) => x - y);
  console.log(
    `takeover A → B (${TAKEOVERS} client ids): CONNECT → CONNACK p50 ${percentile(times, 50).toFixed(1)} ms, ` +
      `p99 ${percentile(times, 99).toFixed(1)} ms; session present ${present}/${TAKEOVERS}`,
  );
  await stopBridge(a);
  await stopBridge(b);
}

runBenchmark(async () => {
  const bench = await startBenchKafka();
  try {
    console.log(
      `load: ${GENERATORS} generator processes × ${CONNECTIONS} connections, ${WINDOW} QoS 1 in flight each, ${PAYLOAD}-byte payloads, ${MESSAGES} messages; one rule to a 6-partition topic, key = device`,
    );
    await uplink(bench, 1);
    await uplink(bench, 2);
    await takeover(bench);
  } finally {
    await bench.stop();
  }
});

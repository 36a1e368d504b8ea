/**
 * The bridge under test in a process of its own, built as it ships (`npm run build`, then
 * `node dist/cli.js start`, as the Dockerfile runs it): its CPU and memory are then its own,
 * read from /proc, and the load reaches it over TCP from other processes. Not through tsx: its
 * esbuild transform keeps function names by redefining `name` on every function made at run
 * time, which costs a call per closure and a property array (256 bytes) per named closure.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort, isPortFree } from '../kafka/local-kafka.js';
import { processTree } from './os-stats.js';

export interface BridgeProcessOptions {
  brokers: string;
  /** The mapping rules (YAML). */
  mappings: string;
  /** `start --workers N` (default 1). */
  workers?: number;
  /** More environment (BRIDGE_* options); it wins over the defaults below. */
  env?: Record<string, string>;
}

export interface BridgeProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  /** The HTTP port (health, /metrics) of the first worker; worker i has httpPort + i. */
  httpPort: number;
  /** The bridge's processes (with the workers of `--workers N`). */
  pids: () => number[];
  /** Seconds from spawn until every worker answered ready. */
  startSeconds: number;
  /** The text of /metrics (the first worker's). */
  metrics: () => Promise<string>;
  stop: () => Promise<void>;
}

/**
 * Options every benchmark wants: the whole load comes from one address, as fast as it can, and
 * anonymously; only warnings are logged (into this process's stderr).
 */
const BENCH_ENV = {
  BRIDGE_MQTT_HOST: '127.0.0.1',
  BRIDGE_HTTP_HOST: '127.0.0.1',
  BRIDGE_WEBSOCKET_ENABLED: 'false',
  BRIDGE_AUTH_ALLOW_ANONYMOUS: 'true',
  BRIDGE_LOG_LEVEL: 'warn',
  BRIDGE_MQTT_MAX_CONNECTIONS_PER_ADDRESS: '0',
  BRIDGE_MQTT_MAX_CONNECT_RATE: '0',
  BRIDGE_MQTT_MAX_PUBLISH_RATE: '0',
};

/** The compiled entry point, built once per run from the working tree. */
const ENTRY = 'dist/cli.js';
let built: Promise<void> | undefined;

/** `npm run build` (tsc -p tsconfig.build.json) once, so dist/ is the code of this tree. */
function buildBridge(): Promise<void> {
  built ??= new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'],
      (error, stdout) => {
        if (error) reject(new Error(`npm run build failed: ${stdout || error.message}`));
        else resolve();
      },
    );
  });
  return built;
}

export async function startBridgeProcess(options: BridgeProcessOptions): Promise<BridgeProcess> {
  await buildBridge();
  const folder = await mkdtemp(join(tmpdir(), 'bench-bridge-'));
  await writeFile(join(folder, 'rules.yaml'), options.mappings);
  const workers = options.workers ?? 1;
  const port = await findFreePort();
  const httpPort = await freePortRange(workers, port);
  const spawned = performance.now();
  const child = spawn(
    process.execPath,
    [ENTRY, 'start', '--mappings', folder, '--workers', String(workers)],
    {
      // the bridge logs JSON lines on stdout: kept apart from the suite's report
      stdio: ['ignore', 2, 'inherit'],
      env: {
        PATH: process.env.PATH ?? '',
        ...BENCH_ENV,
        BRIDGE_KAFKA_BROKERS: options.brokers,
        BRIDGE_MQTT_PORT: String(port),
        BRIDGE_HTTP_PORT: String(httpPort),
        ...options.env,
      },
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const bridgeUrl = (worker: number, path: string): string =>
    `http://127.0.0.1:${httpPort + worker}${path}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(folder, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      Promise.all(
        Array.from({ length: workers }, (_, worker) =>
          untilReady(bridgeUrl(worker, '/health/ready')),
        ),
      ),
      exited.then((code) => {
        throw new Error(`the bridge exited (${code ?? 'signal'}) while starting`);
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    child,
    pid: child.pid ?? 0,
    port,
    httpPort,
    pids: () => processTree(child.pid ?? 0),
    startSeconds: (performance.now() - spawned) / 1000,
    metrics: async () => (await fetch(bridgeUrl(0, '/metrics'))).text(),
    stop,
  };
}

/** A first port of `count` consecutive free ones, none of them `except` (worker i: first + i). */
async function freePortRange(count: number, except: number): Promise<number> {
  for (;;) {
    const first = await findFreePort();
    const rest = Array.from({ length: count - 1 }, (_, index) => first + 1 + index);
    if (rest.includes(except)) continue;
    const free = await Promise.all(rest.map((port) => isPortFree(port)));
    if (free.every(Boolean)) return first;
  }
}

async function untilReady(url: string): Promise<void> {
  const giveUp = performance.now() + 120_000;
  while (performance.now() < giveUp) {
    const ready = await fetch(url).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the bridge was not ready within 2 minutes (${url})`);
}

/**
 * The values of a counter with one label in Prometheus text, by that label's value
 * (bridge_mqtt_messages_dropped_total by reason).
 */
export function metricByLabel(text: string, name: string): Record<string, number> {
  const values: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = new RegExp(`^${name}\\{\\w+="([^"]*)"\\} (\\S+)`).exec(line);
    if (match?.[1] !== undefined) values[match[1]] = Number(match[2]);
  }
  return values;
}

/** The value of a metric without labels in Prometheus text (nodejs_heap_size_used_bytes). */
export function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((one) => one.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1).split(' ')[0]);
}

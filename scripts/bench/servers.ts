/**
 * The MQTT servers a scenario loads: the bridge, and its peers on the same load — Mosquitto
 * (the in-memory MQTT ceiling) and Aedes + KafkaJS glue (what users write by hand). A peer that
 * is not installed is skipped with a message, never silently.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { findFreePort } from '../kafka/local-kafka.js';
import { metricByLabel, startBridgeProcess, type BridgeProcess } from './bridge-process.js';
import { processTree } from './os-stats.js';

export interface Server {
  name: ServerName;
  port: number;
  /** The bridge's /metrics text; the peers have none. */
  metrics?: () => Promise<string>;
  /** Its processes, for CPU and memory from /proc. */
  pids(): number[];
  stop(): Promise<void>;
}

export type ServerName = 'bridge' | 'mosquitto' | 'aedes-glue';

/** A peer that cannot run here; the reason is printed with the results. */
export class Skipped extends Error {}

/** Connections the bridge accepts at most: more than any idle scenario opens. */
export function bridgeEnv(idleConnections: number): Record<string, string> {
  return { BRIDGE_MQTT_MAX_CONNECTIONS: String(Math.max(100_000, idleConnections * 2)) };
}

export async function startBridgeServer(
  options: Parameters<typeof startBridgeProcess>[0],
): Promise<Server & { process: BridgeProcess }> {
  const bridge = await startBridgeProcess(options);
  return {
    name: 'bridge',
    port: bridge.port,
    pids: bridge.pids,
    stop: bridge.stop,
    metrics: bridge.metrics,
    process: bridge,
  };
}

/**
 * What the bridge counted as not delivered (bridge_mqtt_messages_dropped_total), by reason, as
 * figures of a row ("dropped queue-full"); nothing for a peer or when none was dropped.
 */
export async function droppedByBridge(server: Server): Promise<Record<string, number>> {
  if (!server.metrics) return {};
  const byReason = metricByLabel(await server.metrics(), 'bridge_mqtt_messages_dropped_total');
  return Object.fromEntries(
    Object.entries(byReason)
      .filter(([, count]) => count > 0)
      .map(([reason, count]) => [`dropped ${reason}`, count]),
  );
}

/** `mosquitto -p PORT` (Debian's package): no persistence, anonymous, on 127.0.0.1 only. */
export async function startMosquitto(): Promise<Server> {
  const found = spawnSync('sh', ['-c', 'command -v mosquitto || ls /usr/sbin/mosquitto'], {
    encoding: 'utf8',
  });
  const binary = found.stdout.trim().split('\n')[0];
  if (found.status !== 0 || !binary) {
    throw new Skipped('mosquitto is not installed (Debian: apt-get install mosquitto)');
  }
  const port = await findFreePort();
  return startProcessServer(
    'mosquitto',
    port,
    spawn(binary, ['-p', String(port)], { stdio: 'ignore' }),
  );
}

/** scripts/bench/peers/aedes-glue.ts in a process of its own, producing to `topic`. */
export async function startAedesGlue(brokers: string, topic: string): Promise<Server> {
  try {
    await import('aedes');
  } catch {
    throw new Skipped('aedes is not installed (npm install)');
  }
  const port = await findFreePort();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'scripts/bench/peers/aedes-glue.ts',
      '--port',
      String(port),
      '--brokers',
      brokers,
      '--topic',
      topic,
    ],
    { stdio: ['ignore', 2, 'inherit'] },
  );
  return startProcessServer('aedes-glue', port, child);
}

async function startProcessServer(
  name: ServerName,
  port: number,
  child: ChildProcess,
): Promise<Server> {
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const giveUp = performance.now() + 60_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || performance.now() > giveUp) {
      await stop();
      throw new Error(`${name} did not start listening on ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { name, port, pids: () => processTree(child.pid ?? 0), stop };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

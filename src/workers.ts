import cluster, { type Worker } from 'node:cluster';
import type { BridgeConfig } from './config/load.js';
import { BridgeError } from './errors.js';
import type { Logger } from './observability/logger.js';

/** A worker that dies is started again after this long (doubling while it keeps dying). */
const RESTART_MS = 1_000;
const MAX_RESTART_MS = 30_000;

/** Whether this process is a worker started by `--workers`. */
export function isWorker(): boolean {
  return cluster.isWorker;
}

/**
 * `start --workers N`: this process forks N bridge processes and supervises them. They share
 * the MQTT and WebSocket listeners (Node's cluster module hands each new connection to one of
 * them in turn) and each is an instance of the fleet: instance id `<instance.id>-w<i>`, its own
 * HTTP server on `http.port + i` (port 0: any), all sharing the sessions in Kafka — so a client
 * may land on any of them and keep its session. Signals are passed on; SIGTERM stops them
 * gracefully and this process exits when they have. A worker that dies is started again.
 */
export function runWorkers(count: number, config: BridgeConfig, log: Logger): void {
  if (config.sessions.store !== 'kafka') {
    throw new BridgeError(
      'CONFIG_INVALID',
      `--workers ${count} needs sessions.store (env BRIDGE_SESSIONS_STORE) kafka: workers share sessions through Kafka, as a fleet does`,
    );
  }
  const envOf = (index: number): Record<string, string> => ({
    BRIDGE_INSTANCE_ID: `${config.instance.id}-w${index}`,
    BRIDGE_HTTP_PORT: String(config.http.port === 0 ? 0 : config.http.port + index),
  });
  const workers = new Map<Worker, number>();
  const restartDelays = new Map<number, number>();
  let stopping = false;
  const fork = (index: number): void => {
    const worker = cluster.fork(envOf(index));
    workers.set(worker, index);
    worker.once('online', () => {
      log.info({ worker: index, pid: worker.process.pid }, 'worker started');
    });
  };
  cluster.on('exit', (worker, code, signal) => {
    const index = workers.get(worker);
    workers.delete(worker);
    if (index === undefined) return;
    if (stopping) {
      if (workers.size === 0) process.exit(0);
      return;
    }
    const delay = restartDelays.get(index) ?? RESTART_MS;
    restartDelays.set(index, Math.min(delay * 2, MAX_RESTART_MS));
    log.error({ worker: index, code, signal, restartInMs: delay }, 'worker died');
    setTimeout(() => {
      if (!stopping) fork(index);
    }, delay);
  });
  const passOn = (signal: NodeJS.Signals): void => {
    if (signal !== 'SIGHUP') stopping = true;
    for (const worker of workers.keys()) worker.process.kill(signal);
    if (stopping && workers.size === 0) process.exit(0);
  };
  process.on('SIGTERM', passOn);
  process.on('SIGINT', passOn);
  process.on('SIGHUP', passOn);
  for (let index = 0; index < count; index++) fork(index);
  log.info({ workers: count, instance: config.instance.id }, 'started workers');
}

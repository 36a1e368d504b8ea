import { randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { Bridge } from '../../src/bridge.js';
import { loadConfig, type ConfigOverrides } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { useOrStartKafka } from '../kafka/use-or-start.js';

/** A Kafka for one benchmark run, with a topic of its own. */
export interface BenchKafka {
  /** A KafkaJS client of the same Kafka. */
  kafka: Kafka;
  brokers: string;
  /** A new 6-partition topic, deleted at the end. */
  topic: string;
  /**
   * Bytes this process wrote on its TCP connections to Kafka opened since startBenchKafka
   * returned (the bridges' produce requests, and their consumers' fetches and heartbeats).
   */
  bytesWritten(): number;
  /** Deletes the topic, and stops Kafka if it was started here. */
  stop(): Promise<void>;
}

/** A bridge in this process on a Kafka of its own topic, for one benchmark run. */
export interface BenchBridge {
  bridge: Bridge;
  /** A KafkaJS client of the same Kafka. */
  kafka: Kafka;
  brokers: string;
  /** A new 6-partition topic, deleted at the end. */
  topic: string;
  /** See BenchKafka.bytesWritten. */
  kafkaBytesWritten(): number;
  stop(): Promise<void>;
}

/**
 * Finds or starts Kafka (as `npm run dev`), creates a 6-partition topic, and starts a bridge
 * whose mappings are `mappings(topic)`, on free ports, WebSocket off, logging warnings only.
 */
export async function startBenchBridge(
  mappings: (topic: string) => string,
  overrides: ConfigOverrides = {},
): Promise<BenchBridge> {
  const bench = await startBenchKafka();
  const started = await startBridge(bench, mappings(bench.topic), overrides).catch(
    async (error: unknown) => {
      await bench.stop();
      throw error;
    },
  );
  return {
    bridge: started.bridge,
    kafka: bench.kafka,
    brokers: bench.brokers,
    topic: bench.topic,
    kafkaBytesWritten: () => bench.bytesWritten(),
    async stop() {
      await started.stop();
      await bench.stop();
    },
  };
}

/** Finds or starts Kafka (as `npm run dev`) and creates a 6-partition topic. */
export async function startBenchKafka(): Promise<BenchKafka> {
  const started = await useOrStartKafka();
  const kafka = new Kafka({ brokers: started.brokers.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = `bench.${randomBytes(4).toString('hex')}`;
  await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true });
  const traffic = new SocketTraffic(
    started.brokers.split(',').map((broker) => Number(broker.slice(broker.lastIndexOf(':') + 1))),
  );
  return {
    kafka,
    brokers: started.brokers,
    topic,
    bytesWritten: () => traffic.bytesWritten,
    async stop() {
      traffic.close();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
      await started.started?.stop();
    },
  };
}

/**
 * Starts a bridge on `bench`'s Kafka with `mappings` (YAML), on free ports, WebSocket off,
 * logging warnings only; `overrides.kafka` is merged with the Kafka brokers.
 */
export async function startBridge(
  bench: BenchKafka,
  mappings: string,
  overrides: ConfigOverrides = {},
): Promise<{ bridge: Bridge; stop: () => Promise<void> }> {
  const folder = await mkdtemp(join(tmpdir(), 'bench-'));
  await writeFile(join(folder, 'bench.yaml'), mappings);
  const config = loadConfig({
    overrides: {
      ...overrides,
      kafka: { ...overrides.kafka, brokers: bench.brokers.split(',') },
      // the whole load comes from one address
      mqtt: { host: '127.0.0.1', port: 0, maxConnectionsPerAddress: 0, maxConnectRate: 0 },
      websocket: { enabled: false },
      http: { host: '127.0.0.1', port: 0 },
      mappings: folder,
      log: { level: 'warn', pretty: false },
    },
  });
  const bridge = await Bridge.start(config, createLogger(config.log));
  return {
    bridge,
    async stop() {
      await bridge.stop();
      await rm(folder, { recursive: true, force: true });
    },
  };
}

/**
 * Counts the bytes this process writes on TCP connections it opens to `ports` (socket
 * bytesWritten, whatever library opened them), through the `net.client.socket` diagnostics
 * channel: connections opened before it was made are not counted.
 */
class SocketTraffic {
  readonly #ports: Set<number>;
  readonly #open = new Set<Socket>();
  #closedBytes = 0;
  readonly #onSocket = (message: unknown): void => {
    const { socket } = message as { socket: Socket };
    socket.once('connect', () => {
      if (socket.remotePort === undefined || !this.#ports.has(socket.remotePort)) return;
      this.#open.add(socket);
      socket.once('close', () => {
        this.#open.delete(socket);
        this.#closedBytes += socket.bytesWritten;
      });
    });
  };

  constructor(ports: number[]) {
    this.#ports = new Set(ports);
    diagnostics.subscribe('net.client.socket', this.#onSocket);
  }

  get bytesWritten(): number {
    let total = this.#closedBytes;
    for (const socket of this.#open) total += socket.bytesWritten;
    return total;
  }

  close(): void {
    diagnostics.unsubscribe('net.client.socket', this.#onSocket);
  }
}

/** The p-th percentile of sorted values. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

/** Runs a benchmark's main and exits with its outcome. */
export function runBenchmark(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}

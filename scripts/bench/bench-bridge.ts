import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { Bridge } from '../../src/bridge.js';
import { loadConfig, type ConfigOverrides } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { useOrStartKafka } from '../kafka/use-or-start.js';

/** A bridge in this process on a Kafka of its own topic, for one benchmark run. */
export interface BenchBridge {
  bridge: Bridge;
  /** A KafkaJS client of the same Kafka. */
  kafka: Kafka;
  brokers: string;
  /** A new 6-partition topic, deleted at the end. */
  topic: string;
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
  const started = await useOrStartKafka();
  const kafka = new Kafka({ brokers: started.brokers.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = `bench.${randomBytes(4).toString('hex')}`;
  await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true });
  const folder = await mkdtemp(join(tmpdir(), 'bench-'));
  await writeFile(join(folder, 'bench.yaml'), mappings(topic));
  const config = loadConfig({
    overrides: {
      ...overrides,
      kafka: { brokers: started.brokers.split(',') },
      mqtt: { host: '127.0.0.1', port: 0 },
      websocket: { enabled: false },
      http: { host: '127.0.0.1', port: 0 },
      mappings: folder,
      log: { level: 'warn', pretty: false },
    },
  });
  const bridge = await Bridge.start(config, createLogger(config.log));
  return {
    bridge,
    kafka,
    brokers: started.brokers,
    topic,
    async stop() {
      await bridge.stop();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
      await rm(folder, { recursive: true, force: true });
      await started.started?.stop();
    },
  };
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

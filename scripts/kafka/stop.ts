/**
 * `npm run kafka:stop` — stops the local Kafka started by `npm run kafka:start` on KAFKA_PORT
 * (default 9092), via the pid file in .kafka/data-<port>/.
 *
 *   npm run kafka:stop -- --clean    also deletes its data dir (topics, offsets, log)
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { kafkaPortFromEnv, localKafkaDataDir, REPO_ROOT, stopLocalKafka } from './local-kafka.js';

async function main(): Promise<void> {
  const port = kafkaPortFromEnv();
  const clean = process.argv.slice(2).includes('--clean');
  const dataDir = localKafkaDataDir(port);

  const stopped = await stopLocalKafka(dataDir);
  if (stopped) {
    console.log(`Stopped Kafka at ${stopped.brokers} (pid ${stopped.pid})`);
  } else {
    console.log(
      `No local Kafka running on port ${port} (no live pid file in ${path.relative(REPO_ROOT, dataDir)})`,
    );
  }
  if (clean) {
    await rm(dataDir, { recursive: true, force: true });
    console.log(`Removed ${path.relative(REPO_ROOT, dataDir)}`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);

/**
 * `npm run kafka:stop` — stops the local Kafka started by `npm run kafka:start` on KAFKA_PORT
 * (default 9092), via the pid files in .kafka/data-<port>*\/: a single node or every node of a
 * cluster, secured or not.
 *
 *   npm run kafka:stop -- --clean    also deletes the data dirs of that port (topics, offsets,
 *                                    logs, certificates and SCRAM password)
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { kafkaPortFromEnv, localKafkaDataDir, REPO_ROOT, stopLocalKafka } from './local-kafka.js';
import { localDataDirsOfPort, readClusterSpec, stopLocalCluster } from './local-cluster.js';

const relative = (file: string): string => {
  const rel = path.relative(REPO_ROOT, file);
  return rel.startsWith('..') ? file : rel;
};

async function main(): Promise<void> {
  const port = kafkaPortFromEnv();
  const clean = process.argv.slice(2).includes('--clean');
  const dataDirs = await localDataDirsOfPort(port);

  let stoppedAny = false;
  for (const dataDir of dataDirs) {
    if (readClusterSpec(dataDir)) {
      const stopped = await stopLocalCluster(dataDir);
      if (!stopped) continue;
      stoppedAny = true;
      const pids = stopped.nodes.map((node) => `node ${node.id} pid ${node.pid}`).join(', ');
      console.log(`Stopped Kafka at ${stopped.brokers} (${pids})`);
    } else {
      const stopped = await stopLocalKafka(dataDir);
      if (!stopped) continue;
      stoppedAny = true;
      console.log(`Stopped Kafka at ${stopped.brokers} (pid ${stopped.pid})`);
    }
  }
  if (!stoppedAny) {
    console.log(
      `No local Kafka running on port ${port} (no live pid file in ${relative(localKafkaDataDir(port))}*)`,
    );
  }
  if (clean) {
    for (const dataDir of dataDirs) {
      await rm(dataDir, { recursive: true, force: true });
      console.log(`Removed ${relative(dataDir)}`);
    }
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);

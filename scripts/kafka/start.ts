/**
 * `npm run kafka:start` — starts a local single-node Kafka in the background on 127.0.0.1.
 *
 *   KAFKA_PORT   client port (default 9092); data and log live in .kafka/data-<port>/
 *
 * Prints the bootstrap address and exits 0 while Kafka keeps running; if one is already running
 * on that port (per its pid file) it just prints its address. Stop it with `npm run kafka:stop`.
 */
import path from 'node:path';
import {
  findRunningLocalKafka,
  kafkaPortFromEnv,
  KAFKA_VERSION,
  localKafkaDataDir,
  REPO_ROOT,
  startLocalKafka,
  waitForKafkaReady,
} from './local-kafka.js';

async function main(): Promise<void> {
  const port = kafkaPortFromEnv();
  const dataDir = localKafkaDataDir(port);
  const logFile = path.join(dataDir, 'kafka.log');

  const running = await findRunningLocalKafka(dataDir);
  if (running) {
    await waitForKafkaReady(running.brokers); // it may still be starting
    console.log(
      `Kafka ${KAFKA_VERSION} ready at ${running.brokers} (already running, pid ${running.pid})`,
    );
    return;
  }

  const started = Date.now();
  const abort = new AbortController();
  const onSignal = (): void => {
    abort.abort(new Error('interrupted'));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const kafka = await startLocalKafka({
    port,
    dataDir,
    logFile,
    detached: true,
    signal: abort.signal,
    log: (message) => {
      console.error(message);
    },
  });
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `Kafka ${KAFKA_VERSION} ready at ${kafka.brokers} (pid ${kafka.pid}, started in ${seconds} s, ` +
      `log ${path.relative(REPO_ROOT, logFile)}; stop with npm run kafka:stop)`,
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);

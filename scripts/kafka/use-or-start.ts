import {
  findRunningLocalKafka,
  KAFKA_VERSION,
  kafkaPortFromEnv,
  localKafkaDataDir,
  startLocalKafka,
  type LocalKafka,
} from './local-kafka.js';

/**
 * The Kafka for `npm run dev` and `npm run bench`: BRIDGE_KAFKA_BROKERS if set; else the local
 * Kafka on KAFKA_PORT (default 9092), reused if `npm run kafka:start` runs it, otherwise started
 * here in the caller's process group (`started` is then set: stop it when done).
 */
export async function useOrStartKafka(): Promise<{ brokers: string; started?: LocalKafka }> {
  const configured = process.env.BRIDGE_KAFKA_BROKERS;
  if (configured) return { brokers: configured };
  const port = kafkaPortFromEnv();
  const dataDir = localKafkaDataDir(port);
  const running = await findRunningLocalKafka(dataDir);
  if (running) {
    console.error(`Using the local Kafka already running at ${running.brokers}.`);
    return { brokers: running.brokers };
  }
  console.error(`Starting a local Kafka ${KAFKA_VERSION} on 127.0.0.1:${port} ...`);
  const started = await startLocalKafka({
    port,
    dataDir,
    detached: false,
    log: (message) => {
      console.error(message);
    },
  });
  return { brokers: started.brokers, started };
}

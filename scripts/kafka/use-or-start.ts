import {
  findRunningLocalKafka,
  KAFKA_VERSION,
  kafkaPortFromEnv,
  localKafkaDataDir,
  startLocalKafka,
  type LocalKafka,
} from './local-kafka.js';
import { findRunningOnPort } from './local-cluster.js';

/**
 * The Kafka for `npm run dev` and `npm run bench`: BRIDGE_KAFKA_BROKERS if set; else the local
 * Kafka on KAFKA_PORT (default 9092), reused if `npm run kafka:start` runs it (a single node, or a
 * PLAINTEXT cluster), otherwise started here in the caller's process group (`started` is then
 * set: stop it when done). A SASL_SSL one cannot be used without its BRIDGE_KAFKA_* variables.
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
  const other = (await findRunningOnPort(port))[0];
  if (other?.cluster?.spec.security === 'sasl-ssl') {
    throw new Error(
      `The local Kafka on port ${port} is SASL_SSL: export the BRIDGE_KAFKA_* variables ` +
        `\`npm run kafka:start -- ...\` printed (also in ${other.dataDir}/bridge.env) first.`,
    );
  }
  if (other) {
    console.error(`Using the local Kafka already running at ${other.brokers}.`);
    return { brokers: other.brokers };
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

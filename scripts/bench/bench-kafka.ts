import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { KAFKA_VERSION } from '../kafka/local-kafka.js';
import { useOrStartKafka } from '../kafka/use-or-start.js';
import { listeningPid } from './os-stats.js';

/** A Kafka for one benchmark run: topics of its own, deleted at the end. */
export interface BenchKafka {
  /** A KafkaJS client of the same Kafka. */
  kafka: Kafka;
  brokers: string;
  /** A first 6-partition topic. */
  topic: string;
  /** What it is: the local Kafka's version, or that it was given (BRIDGE_KAFKA_BROKERS). */
  description: string;
  /** Processes of the brokers when they run on this machine (CPU per message on Kafka's side). */
  pids: number[];
  /** A new topic (6 partitions unless said), deleted at the end. */
  newTopic(partitions?: number): Promise<string>;
  /** Records in the topic so far: the sum of its partitions' end offsets. */
  records(topic: string): Promise<number>;
  /** Deletes the topics, and stops Kafka if it was started here. */
  stop(): Promise<void>;
}

/** Finds or starts Kafka (as `npm run dev`) and creates a 6-partition topic. */
export async function startBenchKafka(): Promise<BenchKafka> {
  const started = await useOrStartKafka();
  const brokers = started.brokers.split(',');
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
  const admin: Admin = kafka.admin();
  await admin.connect();
  const topics: string[] = [];
  const newTopic = async (partitions = 6): Promise<string> => {
    const topic = `bench.${randomBytes(4).toString('hex')}`;
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions }],
      waitForLeaders: true,
    });
    topics.push(topic);
    return topic;
  };
  const pids = brokers
    .map((broker) => listeningPid(Number(broker.slice(broker.lastIndexOf(':') + 1))))
    .filter((pid): pid is number => pid !== undefined);
  return {
    kafka,
    brokers: started.brokers,
    topic: await newTopic(),
    description: process.env.BRIDGE_KAFKA_BROKERS
      ? `given by BRIDGE_KAFKA_BROKERS (${brokers.length} broker(s), version not known here)`
      : `Apache Kafka ${KAFKA_VERSION}, local, ${brokers.length} node(s)`,
    pids,
    newTopic,
    async records(topic) {
      const offsets = await admin.fetchTopicOffsets(topic);
      return offsets.reduce((sum, partition) => sum + Number(partition.high), 0);
    },
    async stop() {
      await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.disconnect();
      await started.started?.stop();
    },
  };
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

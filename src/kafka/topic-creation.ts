import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from '../observability/logger.js';

export interface TopicCreation {
  /** 0: the broker's num.partitions. */
  partitions: number;
  /** 0: the broker's default.replication.factor. */
  replicationFactor: number;
}

/**
 * Creates those of `topics` that Kafka does not have (`kafka.createTopics`, for development).
 * The bridge never relies on auto-creation: a device's publish must not create topics.
 */
export async function createMissingTopics(
  kafka: Kafka,
  topics: string[],
  creation: TopicCreation,
  log: Logger,
): Promise<void> {
  if (topics.length === 0) return;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((topic) => !existing.has(topic));
    if (missing.length === 0) return;
    await admin.createTopics({
      waitForLeaders: false,
      topics: missing.map((topic) => ({
        topic,
        numPartitions: creation.partitions === 0 ? -1 : creation.partitions,
        replicationFactor: creation.replicationFactor === 0 ? -1 : creation.replicationFactor,
      })),
    });
    await waitForLeaders(admin, missing);
    log.info({ topics: missing }, 'Kafka topics created (kafka.createTopics)');
  } finally {
    await admin.disconnect();
  }
}

/**
 * Until every partition of `topics` has a leader (a minute at most). KafkaJS's own wait
 * (createTopics' waitForLeaders) gives up when a broker has not heard of a new topic yet.
 */
export async function waitForLeaders(admin: Admin, topics: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const metadata = await admin.fetchTopicMetadata({ topics });
      const led = metadata.topics.every(
        (topic) =>
          topic.partitions.length > 0 &&
          topic.partitions.every((partition) => partition.leader >= 0),
      );
      if (led) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline)
      throw new Error(`no leaders for ${topics.join(', ')} within a minute`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

import type { Kafka } from 'kafkajs';
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
      waitForLeaders: true,
      topics: missing.map((topic) => ({
        topic,
        numPartitions: creation.partitions === 0 ? -1 : creation.partitions,
        replicationFactor: creation.replicationFactor === 0 ? -1 : creation.replicationFactor,
      })),
    });
    log.info({ topics: missing }, 'Kafka topics created (kafka.createTopics)');
  } finally {
    await admin.disconnect();
  }
}

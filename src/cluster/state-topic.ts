import kafkajs, { type Consumer, type EachMessagePayload, type Kafka } from 'kafkajs';
import { waitForLeaders } from '../kafka/topic-creation.js';
import type { Logger } from '../observability/logger.js';

// Node's ESM loader does not see kafkajs's ConfigResourceTypes as a named export (it follows
// `CompressionTypes: Compression.Types` in kafkajs's module.exports): read it from the default.

/** Wait before replacing a consumer KafkaJS gave up on. */
const RESTART_MS = 10_000;

/** A topic the bridge keeps state in, as it must be. */
export interface StateTopicSpec {
  topic: string;
  /** What the topic holds, for messages: "retained", "sessions". */
  what: string;
  cleanupPolicy: 'compact' | 'delete';
  /** Another cleanup policy on an existing topic: a warning, or a refusal to start. */
  wrongPolicy: 'warn' | 'refuse';
  /** When created: 0 for the broker's defaults. */
  partitions?: number;
  replicationFactor?: number;
  /** More topic configuration when created. */
  configEntries?: Array<{ name: string; value: string }>;
}

/** A partition's first and next offsets. */
export interface PartitionOffsets {
  partition: number;
  low: bigint;
  high: bigint;
}

/**
 * Creates the topic with its cleanup policy when it is missing; an existing one with another
 * policy is warned about or refused (an Error saying what to change). Returns its partitions'
 * offsets now.
 */
export async function prepareStateTopic(
  kafka: Kafka,
  spec: StateTopicSpec,
  log: Logger,
): Promise<PartitionOffsets[]> {
  const { topic } = spec;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const created = await admin.createTopics({
      waitForLeaders: false,
      topics: [
        {
          topic,
          numPartitions: spec.partitions || -1,
          replicationFactor: spec.replicationFactor || -1,
          configEntries: [
            { name: 'cleanup.policy', value: spec.cleanupPolicy },
            ...(spec.configEntries ?? []),
          ],
        },
      ],
    });
    if (created) {
      await waitForLeaders(admin, [topic]);
      log.info({ topic, cleanupPolicy: spec.cleanupPolicy }, `${spec.what} topic created`);
    } else {
      checkPolicy(spec, await cleanupPolicyOf(admin, topic), log);
    }
    const offsets = await offsetsOf(admin, topic);
    return offsets.map(({ partition, low, high }) => ({
      partition,
      low: BigInt(low),
      high: BigInt(high),
    }));
  } finally {
    await admin.disconnect();
  }
}

/**
 * The topic's offsets; a new topic's partitions can answer "not the leader" for a moment after
 * they have one (metadata spreading between brokers): retried for up to 30 s.
 */
async function offsetsOf(
  admin: ReturnType<Kafka['admin']>,
  topic: string,
): Promise<Array<{ partition: number; low: string; high: string }>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await admin.fetchTopicOffsets(topic);
    } catch (error) {
      const retriable = (error as { retriable?: boolean }).retriable === true;
      if (!retriable || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function cleanupPolicyOf(
  admin: ReturnType<Kafka['admin']>,
  topic: string,
): Promise<string | undefined> {
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [
      { type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy'] },
    ],
  });
  return resources[0]?.configEntries[0]?.configValue;
}

function checkPolicy(spec: StateTopicSpec, policy: string | undefined, log: Logger): void {
  if (policy === undefined) return;
  const policies = policy.split(',').map((part) => part.trim());
  // compact: a compacted topic (also compact,delete); delete: a topic nothing is compacted in
  const fits =
    spec.cleanupPolicy === 'compact' ? policies.includes('compact') : !policies.includes('compact');
  if (fits) return;
  const message = `${spec.what} topic "${spec.topic}" has cleanup.policy=${policy}; it needs ${spec.cleanupPolicy}`;
  if (spec.wrongPolicy === 'refuse') {
    throw new Error(
      `${message} (kafka-configs --alter --entity-type topics --entity-name ${spec.topic} --add-config cleanup.policy=${spec.cleanupPolicy}, or name another topic)`,
    );
  }
  log.warn({ topic: spec.topic, cleanupPolicy: policy }, message);
}

/** Whether every partition was read up to the end offset it had at start. */
export class CatchUp {
  readonly #left: Map<number, bigint>;
  #resolve: (() => void) | undefined;
  done: boolean;

  constructor(offsets: PartitionOffsets[]) {
    this.#left = new Map(
      offsets.filter(({ low, high }) => high > low).map(({ partition, high }) => [partition, high]),
    );
    this.done = this.#left.size === 0;
  }

  consumed(partition: number, offset: string): void {
    const end = this.#left.get(partition);
    if (end === undefined || BigInt(offset) + 1n < end) return;
    this.#left.delete(partition);
    if (this.#left.size === 0) {
      this.done = true;
      this.#resolve?.();
    }
  }

  /** Resolves true once caught up, or false after `timeoutMs`. */
  within(timeoutMs: number): Promise<boolean> {
    if (this.done) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        resolve(false);
      }, timeoutMs);
      this.#resolve = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}

/** How a TopicTail reads. */
export interface TailOptions {
  topic: string;
  /** A group of its own (every bridge reads every partition; nothing is committed). */
  groupId: string;
  /** For log lines: "retained topic", "sessions topic". */
  what: string;
  /**
   * Where to read each partition from whenever the group is joined (start, restart); absent:
   * from the beginning.
   */
  positions?: () => ReadonlyMap<number, bigint>;
}

/**
 * Reads a whole topic from its beginning and keeps reading it, in a consumer group of its own
 * (every partition, no offsets committed). A consumer KafkaJS gives up on is replaced after
 * 10 s, reading from the beginning again (the handler must take a record twice): without one,
 * other bridges' changes would not arrive.
 */
export class TopicTail {
  readonly #kafka: Kafka;
  readonly #options: TailOptions;
  readonly #log: Logger;
  readonly #handle: (payload: EachMessagePayload) => void;
  #consumer: Consumer | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(
    kafka: Kafka,
    options: TailOptions,
    log: Logger,
    handle: (payload: EachMessagePayload) => void,
  ) {
    this.#kafka = kafka;
    this.#options = options;
    this.#log = log;
    this.#handle = handle;
  }

  /** Starts reading; resolves once the consumer runs. */
  static async start(
    kafka: Kafka,
    options: TailOptions,
    log: Logger,
    handle: (payload: EachMessagePayload) => void,
  ): Promise<TopicTail> {
    const tail = new TopicTail(kafka, options, log, handle);
    await tail.#run();
    return tail;
  }

  /** Reads `partition` again from `offset` (its records come again, in order). */
  seek(partition: number, offset: bigint): void {
    this.#consumer?.seek({ topic: this.#options.topic, partition, offset: offset.toString() });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#restartTimer);
    await this.#consumer?.disconnect().catch(() => undefined);
  }

  async #run(): Promise<void> {
    const consumer = this.#kafka.consumer({
      groupId: this.#options.groupId,
      allowAutoTopicCreation: false,
    });
    this.#consumer = consumer;
    const { positions } = this.#options;
    if (positions) {
      consumer.on(consumer.events.GROUP_JOIN, () => {
        for (const [partition, offset] of positions()) this.seek(partition, offset);
      });
    }
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || this.#closed) return;
      this.#log.error(
        { err: payload.error },
        `${this.#options.what} consumer stopped; restarting in 10 s`,
      );
      this.#restartTimer = setTimeout(() => {
        void consumer
          .disconnect()
          .catch(() => undefined)
          .then(() => (this.#closed ? undefined : this.#run()))
          .catch((error: unknown) => {
            this.#log.error({ err: error }, `${this.#options.what} consumer cannot restart`);
          });
      }, RESTART_MS);
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [this.#options.topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: (payload) => {
          this.#handle(payload);
          return Promise.resolve();
        },
      });
    } catch (error) {
      await consumer.disconnect().catch(() => undefined);
      throw error;
    }
  }
}

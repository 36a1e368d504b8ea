import { randomUUID } from 'node:crypto';
import kafkajs, { type Consumer, type Kafka, type KafkaMessage } from 'kafkajs';
import type { ProducerPipeline } from '../kafka/producer-pipeline.js';
import type { BrokerMessage } from '../mqtt/message.js';
import { waitForLeaders } from '../kafka/topic-creation.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import { RETAINED_HEADER, decodeRetained, encodeRetained } from './retained-codec.js';
import { RetainedConvergence, WRITE_HEADER } from './retained-convergence.js';

// Node's ESM loader does not see kafkajs's ConfigResourceTypes as a named export (it follows
// `CompressionTypes: Compression.Types` in kafkajs's module.exports): read it from the default.

/** Wait before replacing a consumer KafkaJS gave up on. */
const RESTART_MS = 10_000;

/** Where records of the retained topic go: the broker's retained messages. */
export interface RetainedTarget {
  /** Stores a retained message, or clears its topic (empty payload), without writing it back. */
  restoreRetained(message: BrokerMessage): void;
}

/**
 * Retained messages kept in a compacted Kafka topic: key = MQTT topic, value =
 * the payload, metadata (QoS, properties, expiry) in a header, tombstone =
 * cleared. At start the topic is read to its end before devices connect, so
 * retained messages survive restarts; afterwards the bridge keeps reading it,
 * so bridges that share the topic converge on Kafka's last record of each
 * MQTT topic (see RetainedConvergence for which records apply).
 */
export class KafkaRetainedLog {
  readonly #topic: string;
  readonly #pipeline: ProducerPipeline;
  readonly #target: RetainedTarget;
  readonly #failures: RateLimitedLog;
  readonly #convergence = new RetainedConvergence(randomUUID());
  #consumer: Consumer | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(
    topic: string,
    pipeline: ProducerPipeline,
    target: RetainedTarget,
    log: Logger,
  ) {
    this.#topic = topic;
    this.#pipeline = pipeline;
    this.#target = target;
    this.#failures = new RateLimitedLog(log);
  }

  /**
   * Creates the topic if it is missing (compacted), reads it to its end into
   * `target` (waiting `timeoutMs` at most), and keeps reading it.
   */
  static async open(
    kafka: Kafka,
    pipeline: ProducerPipeline,
    options: { topic: string; clientId: string; timeoutMs: number },
    target: RetainedTarget,
    log: Logger,
  ): Promise<KafkaRetainedLog> {
    const retainedLog = new KafkaRetainedLog(options.topic, pipeline, target, log);
    const started = Date.now();
    const ends = await prepareTopic(kafka, options.topic, log);
    const caughtUp = new CatchUp(ends);
    let restored = 0;
    await retainedLog.#consume(kafka, options, log, (partition, offset) => {
      if (!caughtUp.done) restored++;
      caughtUp.consumed(partition, offset);
    });
    if (!(await caughtUp.within(options.timeoutMs))) {
      log.warn(
        { topic: options.topic, records: restored, timeoutMs: options.timeoutMs },
        'retained topic not read to its end in time: starting with what was read, the rest applies as it arrives',
      );
    }
    log.info(
      { topic: options.topic, records: restored, ms: Date.now() - started },
      'retained messages restored from Kafka',
    );
    return retainedLog;
  }

  /**
   * Writes a change of a retained message (empty payload: cleared); `done`
   * once Kafka has it or refused it (a refusal is logged; the broker keeps
   * the message in memory either way).
   */
  write(message: BrokerMessage, done: () => void): void {
    const topic = message.topic;
    const write = this.#convergence.writing(topic);
    const encoded = message.payload.length === 0 ? undefined : encodeRetained(message);
    this.#pipeline.enqueue(
      [
        {
          topic: this.#topic,
          key: topic,
          value: encoded?.value ?? null,
          partition: undefined,
          timestamp: Date.now(),
          headers: {
            [WRITE_HEADER]: write,
            ...(encoded && { [RETAINED_HEADER]: encoded.metadata }),
          },
        },
      ],
      (failure) => {
        if (failure) {
          const last = this.#convergence.failed(topic, write);
          if (last) this.#apply(topic, last);
          this.#failures.warn(
            failure.reason,
            { topic: this.#topic, reason: failure.reason },
            'retained message not written to Kafka: kept in memory only',
          );
        }
        done();
      },
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#restartTimer);
    await this.#consumer?.disconnect().catch(() => undefined);
  }

  /**
   * Reads the topic from its beginning (records read before are skipped by offset) and keeps
   * reading it; `onRecord` sees every record. A consumer KafkaJS gives up on is replaced after
   * 10 s: without one, other bridges' changes would not arrive, and topics this bridge writes
   * would wait for their read-back for ever.
   */
  async #consume(
    kafka: Kafka,
    options: { topic: string; clientId: string },
    log: Logger,
    onRecord: (partition: number, offset: string) => void = () => undefined,
  ): Promise<void> {
    const consumer = kafka.consumer({
      // a group of its own: every bridge reads every partition, and no offset is committed
      groupId: `${options.clientId}-retained-${randomUUID()}`,
      allowAutoTopicCreation: false,
    });
    this.#consumer = consumer;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || this.#closed) return;
      log.error({ err: payload.error }, 'retained topic consumer stopped; restarting in 10 s');
      this.#restartTimer = setTimeout(() => {
        void consumer
          .disconnect()
          .catch(() => undefined)
          .then(() => (this.#closed ? undefined : this.#consume(kafka, options, log)))
          .catch((error: unknown) => {
            log.error({ err: error }, 'retained topic consumer cannot restart');
          });
      }, RESTART_MS);
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [options.topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: ({ partition, message }) => {
          if (this.#convergence.read(partition, message)) {
            this.#apply(message.key?.toString('utf8') ?? '', message);
          }
          onRecord(partition, message.offset);
          return Promise.resolve();
        },
      });
    } catch (error) {
      await consumer.disconnect().catch(() => undefined);
      throw error;
    }
  }

  #apply(topic: string, record: KafkaMessage): void {
    if (record.value === null || record.value.length === 0) {
      this.#target.restoreRetained(cleared(topic));
      return;
    }
    try {
      const metadata = record.headers?.[RETAINED_HEADER]?.toString() ?? '';
      this.#target.restoreRetained(decodeRetained(topic, record.value, metadata));
    } catch (error) {
      this.#failures.warn(
        'undecodable',
        { topic: this.#topic, key: topic, offset: record.offset, err: error },
        'retained record skipped: not a retained message',
      );
    }
  }
}

/** A message that clears `topic`'s retained message. */
function cleared(topic: string): BrokerMessage {
  return {
    topic,
    payload: Buffer.alloc(0),
    qos: 0,
    retain: true,
    properties: {},
    expiresAt: undefined,
    origin: { clientId: '', username: undefined },
  };
}

/**
 * Creates `topic` compacted when it is missing (a topic that exists and is
 * not compacted is used, with a warning), and returns its partitions' end
 * offsets: what must be read before the retained messages are complete.
 */
async function prepareTopic(
  kafka: Kafka,
  topic: string,
  log: Logger,
): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const created = await admin.createTopics({
      waitForLeaders: false,
      topics: [{ topic, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
    });
    if (created) await waitForLeaders(admin, [topic]);
    else {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          { type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy'] },
        ],
      });
      const policy = resources[0]?.configEntries[0]?.configValue;
      if (policy !== undefined && !policy.includes('compact')) {
        log.warn(
          { topic, cleanupPolicy: policy },
          'retained topic is not compacted: old versions of retained messages are kept and read at every start',
        );
      }
    }
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(
      offsets
        .filter(({ high, low }) => BigInt(high) > BigInt(low))
        .map(({ partition, high }) => [partition, BigInt(high)]),
    );
  } finally {
    await admin.disconnect();
  }
}

/** Whether every partition was read up to the end offset it had at start. */
class CatchUp {
  readonly #left: Map<number, bigint>;
  #resolve: (() => void) | undefined;
  done: boolean;

  constructor(ends: Map<number, bigint>) {
    this.#left = new Map(ends);
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

import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { ProducerPipeline } from '../kafka/producer-pipeline.js';
import type { BrokerMessage } from '../mqtt/message.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import { RETAINED_HEADER, decodeRetained, encodeRetained } from './retained-codec.js';
import { RetainedConvergence, WRITE_HEADER } from './retained-convergence.js';
import { CatchUp, TopicTail, prepareStateTopic } from './state-topic.js';

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
  #tail: TopicTail | undefined;

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
    const ends = await prepareStateTopic(
      kafka,
      {
        topic: options.topic,
        what: 'retained',
        cleanupPolicy: 'compact',
        wrongPolicy: 'warn',
      },
      log,
    );
    const caughtUp = new CatchUp(ends);
    let restored = 0;
    retainedLog.#tail = await TopicTail.start(
      kafka,
      {
        topic: options.topic,
        groupId: `${options.clientId}-retained-${randomUUID()}`,
        what: 'retained topic',
      },
      log,
      ({ partition, message }) => {
        if (retainedLog.#convergence.read(partition, message)) {
          retainedLog.#apply(message.key?.toString('utf8') ?? '', message);
        }
        if (!caughtUp.done) restored++;
        caughtUp.consumed(partition, message.offset);
      },
    );
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
    await this.#tail?.close();
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

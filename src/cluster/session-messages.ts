import type { Kafka } from 'kafkajs';
import { PartitionChoice } from '../kafka/partition-choice.js';
import type { ProducerPipeline } from '../kafka/producer-pipeline.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import { DELIVERY_HEADER, decodeDelivery, encodeDelivery } from './delivery-codec.js';
import { MailboxCursors, type CursorCallbacks, type MailboxDelivery } from './mailbox-cursors.js';
import { TopicTail, prepareStateTopic } from './state-topic.js';

export interface SessionMessagesOptions {
  topic: string;
  /** Consumer group prefix (a group of its own is used). */
  clientId: string;
  instanceId: string;
  partitions: number;
  replicationFactor: number;
  retentionMs: number;
}

/**
 * The messages of persistent sessions in Kafka (sessions.messagesTopic, cleanup policy delete,
 * key = client id, so one session's messages keep their order in one partition): written by
 * whichever bridge routes a message to a session, read by every bridge, and fed to the sessions
 * attached here by `cursors`. A session's queue is the records after its position.
 */
export class SessionMessages {
  readonly cursors: MailboxCursors;
  readonly #options: SessionMessagesOptions;
  readonly #pipeline: ProducerPipeline;
  readonly #choice = new PartitionChoice();
  readonly #partitionCount: number;
  readonly #failures: RateLimitedLog;
  #tail: TopicTail | undefined;

  private constructor(
    options: SessionMessagesOptions,
    pipeline: ProducerPipeline,
    partitionCount: number,
    callbacks: Pick<CursorCallbacks, 'changed'>,
    log: Logger,
  ) {
    this.#options = options;
    this.#pipeline = pipeline;
    this.#partitionCount = partitionCount;
    this.#failures = new RateLimitedLog(log);
    this.cursors = new MailboxCursors({
      seek: (partition, offset) => {
        this.#tail?.seek(partition, offset);
      },
      changed: callbacks.changed,
    });
  }

  /**
   * Creates the topic if missing (cleanup policy delete: a compacted one would keep one message
   * per session; another policy refuses start) and starts reading it from its end.
   */
  static async open(
    kafka: Kafka,
    pipeline: ProducerPipeline,
    options: SessionMessagesOptions,
    callbacks: Pick<CursorCallbacks, 'changed'>,
    log: Logger,
  ): Promise<SessionMessages> {
    const offsets = await prepareStateTopic(
      kafka,
      {
        topic: options.topic,
        what: 'session messages',
        cleanupPolicy: 'delete',
        wrongPolicy: 'refuse',
        partitions: options.partitions,
        replicationFactor: options.replicationFactor,
        configEntries: [{ name: 'retention.ms', value: String(options.retentionMs) }],
      },
      log,
    );
    const messages = new SessionMessages(options, pipeline, offsets.length, callbacks, log);
    for (const { partition, high } of offsets) messages.cursors.startAt(partition, high);
    messages.#tail = await TopicTail.start(
      kafka,
      {
        topic: options.topic,
        groupId: `${options.clientId}-session-messages-${options.instanceId}-${Date.now()}`,
        what: 'session messages topic',
        positions: () => messages.cursors.positions(),
      },
      log,
      ({ partition, message }) => {
        const clientId = message.key?.toString('utf8');
        messages.cursors.record(partition, BigInt(message.offset), clientId, () =>
          messages.#decode(message.value, message.headers?.[DELIVERY_HEADER], message.offset),
        );
      },
    );
    return messages;
  }

  /** The partition holding a client id's messages. */
  partitionOf(clientId: string): number {
    const record = { topic: this.#options.topic, key: clientId, value: null };
    return this.#choice.of(
      { ...record, partition: undefined, timestamp: 0, headers: {} },
      this.#partitionCount,
    );
  }

  /** Keeps a message for a session; `done(true)` once Kafka has it. */
  write(clientId: string, delivery: MailboxDelivery, done: (kept: boolean) => void): void {
    this.#pipeline.enqueue(
      [
        {
          topic: this.#options.topic,
          key: clientId,
          value: delivery.message.payload,
          partition: this.partitionOf(clientId),
          timestamp: Date.now(),
          headers: { [DELIVERY_HEADER]: encodeDelivery(delivery) },
        },
      ],
      (failure) => {
        if (failure) {
          this.#failures.warn(
            failure.reason,
            { topic: this.#options.topic, reason: failure.reason },
            'message for a session not written to Kafka: dropped',
          );
        }
        done(failure === undefined);
      },
    );
  }

  async close(): Promise<void> {
    await this.#tail?.close();
  }

  #decode(
    value: Buffer | null,
    metadata: Buffer | string | Array<Buffer | string> | undefined,
    offset: string,
  ): MailboxDelivery | undefined {
    try {
      return decodeDelivery(value ?? Buffer.alloc(0), metadata?.toString() ?? '');
    } catch (error) {
      this.#failures.warn(
        'undecodable',
        { topic: this.#options.topic, offset, err: error },
        'session message skipped: not one the bridge wrote',
      );
      return undefined;
    }
  }
}

import type { EachMessagePayload, Kafka, KafkaMessage } from 'kafkajs';
import type { BridgeConfig } from '../config/load.js';
import type { BrokerMessage } from '../mqtt/message.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { Logger } from '../observability/logger.js';
import type { BridgeMetrics } from '../observability/metrics.js';
import type { DownlinkRouter } from '../rules/downlink-router.js';
import type {
  DownlinkMessage,
  DownlinkRecord,
  DownlinkSource,
  ReplyCheck,
  Requester,
} from '../rules/downlink-types.js';
import { DEAD_LETTER_HEADERS } from '../rules/headers.js';
import type { KafkaRecord } from '../rules/types.js';
import { settleAfter } from '../settle-after.js';
import { Waiters } from '../waiters.js';
import { exclusiveAssigner } from './exclusive-assigner.js';
import { GroupMembership } from './group-membership.js';

/** Where mapped messages go: the broker's sessions. */
export interface DownlinkTarget {
  /** Delivers to subscribed sessions; `settle` once all are done; returns how many. */
  publishDownlink(message: BrokerMessage, settle: () => void): number;
  /**
   * Whether a reply may go to `topic` on behalf of the requesting client `clientId` (undefined:
   * the record names none): `allowed`, `unknown-client` or `not-allowed`. A target without it
   * knows no clients: every reply is then refused as for an unknown client.
   */
  checkReply?(clientId: string | undefined, topic: string): ReplyCheck;
  /**
   * Undefined when a message for `topic` may be delivered now; otherwise a connected
   * subscriber's queue is full: resolves when there may be room, or after `ms` (ask again).
   */
  downlinkRoom?(topic: string, ms: number): Promise<void> | undefined;
}

/** Produces a dead letter; `done` once Kafka has it (or gave up). */
export type DeadLetterWriter = (record: KafkaRecord, done: () => void) => void;

/** The `downlink.*` options (documented in the configuration schema). */
export type DownlinkOptions = BridgeConfig['downlink'];

/** Wait before trying again to join the consumer groups. */
const RETRY_START_MS = 10_000;

/** The client id messages from Kafka carry as their origin (no MQTT client has it: ids are never empty). */
const KAFKA_ORIGIN = { clientId: '', username: undefined };

/**
 * The downlink: KafkaJS consumer groups over the downlink rules' topics.
 * Each record becomes MQTT messages through the rules and goes to the
 * broker; its offset is committed only once every session it went to is
 * done with it (acknowledged, written at QoS 0, or dropped), so a restart
 * consumes again what was not delivered (at least once). Records of one
 * partition are handed over in offset order, so one key's records reach a
 * device in order. A record no rule can map goes to the dead-letter topic
 * and never blocks the records behind it.
 */
export class DownlinkConsumer {
  readonly #kafka: Kafka;
  #router: DownlinkRouter;
  readonly #target: DownlinkTarget;
  readonly #deadLetter: DeadLetterWriter;
  readonly #options: DownlinkOptions;
  readonly #log: Logger;
  /** Once a minute at most: the schema registry does not answer. */
  readonly #registryLog: RateLimitedLog;
  readonly #metrics: BridgeMetrics;
  readonly #groups: GroupMembership[] = [];
  #unsettled = 0;
  /** Records waiting for others to settle below maxUnsettled. */
  readonly #capacity = new Waiters();
  #commitTimer: NodeJS.Timeout | undefined;
  #startTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Incremented when the consumer groups are stopped: a start in progress then gives up. */
  #generation = 0;
  /** Whether the groups were started again after a failure. */
  #restarted = false;

  constructor(
    kafka: Kafka,
    router: DownlinkRouter,
    target: DownlinkTarget,
    deadLetter: DeadLetterWriter,
    options: DownlinkOptions,
    log: Logger,
    metrics: BridgeMetrics,
  ) {
    this.#kafka = kafka;
    this.#router = router;
    this.#target = target;
    this.#deadLetter = deadLetter;
    this.#options = options;
    this.#log = log;
    this.#registryLog = new RateLimitedLog(log);
    this.#metrics = metrics;
  }

  /**
   * Starts consuming after `delayMs` (time for devices to reconnect and
   * subscribe after a restart); failures are logged and retried.
   */
  startAfter(delayMs: number): void {
    if (this.#router.sources().length === 0) return;
    // one start at a time: several consumer groups may ask for a restart at once
    clearTimeout(this.#startTimer);
    this.#startTimer = setTimeout(() => {
      this.start().catch((error: unknown) => {
        this.#log.error({ err: error }, 'downlink cannot start; retrying in 10 s');
        this.#restart();
      });
    }, delayMs);
  }

  /**
   * A reload may change what the rules do with records, not where they come
   * from: consumer groups and subscriptions stay. Throws when the sources differ.
   */
  checkReplacement(router: DownlinkRouter): void {
    if (sourcesKey(router) !== sourcesKey(this.#router)) {
      throw new Error(
        'downlink sources (topics, patterns, groups, start) changed: restart the bridge to apply them',
      );
    }
  }

  /** Swaps the rules (checked with checkReplacement); records consumed from now on use them. */
  replaceRouter(router: DownlinkRouter): void {
    this.#router = router;
  }

  /** Joins a consumer group per group id of the rules and starts consuming. */
  async start(): Promise<void> {
    const byGroup = new Map<string, DownlinkSource[]>();
    const { instanceId } = this.#options;
    for (const source of this.#router.sources()) {
      const base = source.groupId ?? this.#options.groupId;
      const groupId = instanceId === '' ? base : `${base}.${instanceId}`;
      byGroup.set(groupId, [...(byGroup.get(groupId) ?? []), source]);
    }
    const generation = this.#generation;
    for (const [groupId, sources] of byGroup) {
      await this.#startGroup(groupId, sources, generation);
      if (generation !== this.#generation) return; // stopped meanwhile
    }
    clearInterval(this.#commitTimer);
    this.#commitTimer = setInterval(() => {
      void this.#commit();
    }, this.#options.commitIntervalMs);
  }

  /** Stops consuming and commits what is settled; later settlements commit nothing. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#startTimer);
    clearInterval(this.#commitTimer);
    this.#capacity.wakeAll();
    // KafkaJS commits only while the consumer runs: commit first, then stop
    await this.#commit();
    await this.#stopGroups();
  }

  /** After a failed start or a consumer KafkaJS gave up on: commit, stop all, start in 10 s. */
  #restart(): void {
    this.#restarted = true;
    void this.#commit()
      .then(() => this.#stopGroups())
      .then(() => {
        if (!this.#stopped) this.startAfter(RETRY_START_MS);
      });
  }

  async #stopGroups(): Promise<void> {
    // a start still joining groups sees this and leaves the ones it made
    this.#generation++;
    for (const group of this.#groups.splice(0)) await group.leave();
  }

  async #startGroup(groupId: string, sources: DownlinkSource[], generation: number): Promise<void> {
    const consumer = this.#kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: this.#options.sessionTimeoutMs,
      heartbeatInterval: this.#heartbeatIntervalMs,
      // an idle member heartbeats between fetches: a fetch waits no longer than the interval
      maxWaitTimeInMs: this.#heartbeatIntervalMs,
      partitionAssigners: [
        exclusiveAssigner({
          startedAt: Date.now(),
          heldSince: () => group.heldSince,
          consuming: () => group.consuming,
        }),
      ],
    });
    const group = new GroupMembership(
      groupId,
      consumer,
      // after a restart, partitions this bridge gets are a takeover: it waits startDelayMs
      { startDelayMs: this.#options.startDelayMs, takeOverOnFirstJoin: this.#restarted },
      this.#log,
      this.#metrics,
    );
    this.#groups.push(group);
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      // partitions may have moved: their lag comes back with their next batch
      this.#metrics.downlinkConsumerLag.reset();
      group.joined(payload.memberAssignment);
    });
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const { topic, partition, offsetLag } = payload;
      this.#metrics.downlinkConsumerLag.set(
        { group: groupId, topic, partition: String(partition) },
        Number(offsetLag),
      );
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      // KafkaJS restarts the consumer after retriable errors; after others nobody would
      if (payload.restart || this.#stopped || !this.#groups.includes(group)) return;
      this.#log.error(
        { err: payload.error, groupId },
        'downlink consumer stopped; restarting in 10 s',
      );
      this.#restart();
    });
    const stale = async (): Promise<boolean> => {
      if (generation === this.#generation) return false;
      await consumer.disconnect().catch(() => undefined);
      return true;
    };
    await consumer.connect();
    for (const source of sources) {
      if (await stale()) return;
      const topics = source.topics ?? (source.pattern ? [source.pattern] : []);
      await consumer.subscribe({ topics, fromBeginning: source.start === 'earliest' });
    }
    if (await stale()) return;
    await consumer.run({
      autoCommit: false,
      eachMessage: (payload) => this.#handle(group, payload),
    });
    if (await stale()) return;
    this.#log.info({ groupId, rules: sources.map((source) => source.rule) }, 'downlink consuming');
  }

  async #handle(group: GroupMembership, payload: EachMessagePayload): Promise<void> {
    const { topic, partition, message } = payload;
    while (!this.#isStopped() && this.#unsettled >= this.#options.maxUnsettled) {
      await this.#capacity.wait(this.#heartbeatIntervalMs);
      // Stay in the group while waiting. A rebalance meanwhile makes this throw: KafkaJS joins
      // again and fetches this record anew (it was not handed over).
      if (!this.#isStopped()) await payload.heartbeat();
    }
    // not handed over, so not committed: consumed again after the restart
    if (this.#isStopped()) return;
    const offsets = group.partition(topic, partition);
    if (offsets.handedOver(message.offset)) {
      this.#metrics.downlinkRecordsSkipped.inc();
      return;
    }
    const record = toDownlinkRecord(topic, partition, message);
    // a `schemaId: registry` rule may need the writer schema of the value's id first
    const router = this.#router;
    for (let wait = router.prepare(record); wait; wait = router.prepare(record)) {
      try {
        await wait;
      } catch (error) {
        this.#registryLog.warn(
          'registry',
          { err: error, topic, partition },
          'schema registry unavailable: the record waits',
        );
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        if (this.#isStopped()) return;
        await payload.heartbeat();
      }
    }
    const results = router.route(record);
    for (const result of results) {
      // not handed over while it waits, so not committed if the downlink stops meanwhile
      if (result.kind !== 'invalid' && !(await this.#roomFor(result.message.topic, payload))) {
        return;
      }
    }
    this.#metrics.downlinkRecords.inc();
    const settleRecord = this.#countUnsettled(offsets.track(message.offset));
    if (results.length === 0) {
      this.#metrics.downlinkRecordsUnmatched.inc();
      this.#sendToDeadLetter(record, undefined, 'no downlink rule matches', settleRecord);
      return;
    }
    const settleOne = settleAfter(results.length, settleRecord);
    for (const result of results) {
      if (result.kind === 'invalid') {
        this.#metrics.downlinkRecordsInvalid.inc();
        this.#sendToDeadLetter(record, result.rule, result.error, settleOne);
        continue;
      }
      if (result.replyFor !== undefined) {
        const refusal = this.#replyRefusal(result.replyFor, result.message.topic);
        if (refusal === 'elsewhere') {
          this.#metrics.downlinkMessagesWithoutSession.inc();
          this.#metrics.downlinkRules.add(result.rule, 'without_session');
          settleOne();
          continue;
        }
        if (refusal !== undefined) {
          this.#metrics.downlinkRecordsInvalid.inc();
          this.#sendToDeadLetter(record, result.rule, refusal.reason, settleOne);
          continue;
        }
      }
      const sessions = this.#target.publishDownlink(toBrokerMessage(result.message), settleOne);
      if (sessions === 0) this.#metrics.downlinkMessagesWithoutSession.inc();
      else this.#metrics.downlinkMessagesDelivered.inc(sessions);
      this.#metrics.downlinkRules.add(
        result.rule,
        sessions === 0 ? 'without_session' : 'delivered',
      );
    }
  }

  /**
   * Waits while a connected subscriber of `topic` has a full queue and is still taking messages,
   * heartbeating meanwhile; false when the downlink stopped while waiting.
   */
  async #roomFor(topic: string, payload: EachMessagePayload): Promise<boolean> {
    const ms = this.#heartbeatIntervalMs;
    for (let wait = this.#target.downlinkRoom?.(topic, ms); wait;) {
      this.#metrics.downlinkQueueWaits.inc();
      await wait;
      if (this.#isStopped()) return false;
      await payload.heartbeat();
      wait = this.#target.downlinkRoom?.(topic, ms);
    }
    return true;
  }

  /**
   * Why a reply rule's message may not go to `topic` for its requesting client (the dead
   * letter's `reason`), `elsewhere` when that client is unknown here but may be connected to
   * another bridge of a scale-out (`instanceId` set: each bridge consumes every record and only
   * the requester's own bridge judges and delivers it), or undefined: deliver.
   */
  #replyRefusal(requester: Requester, topic: string): { reason: string } | 'elsewhere' | undefined {
    const clientId = 'clientId' in requester ? requester.clientId : undefined;
    const check = this.#target.checkReply?.(clientId, topic) ?? 'unknown-client';
    if (check === 'allowed') return undefined;
    if ('missing' in requester) return { reason: `no requesting client id (${requester.missing})` };
    const [quotedTopic, quotedClient] = [JSON.stringify(topic), JSON.stringify(clientId)];
    if (check === 'not-allowed') {
      return {
        reason: `response topic ${quotedTopic} is not one client ${quotedClient} may subscribe to`,
      };
    }
    if (this.#options.instanceId !== '') return 'elsewhere';
    return {
      reason: `requesting client ${quotedClient} is unknown (not connected, no session kept)`,
    };
  }

  /** Read through a call: `stop()` may set it while #handle awaits (no narrowing). */
  #isStopped(): boolean {
    return this.#stopped;
  }

  /** A third of the session timeout (Kafka's advice), at most KafkaJS's default 3 s. */
  get #heartbeatIntervalMs(): number {
    return Math.min(3_000, Math.floor(this.#options.sessionTimeoutMs / 3));
  }

  /** Wraps a settle so the unsettled count (and the waiting consumers) follow it, once. */
  #countUnsettled(settle: () => void): () => void {
    this.#unsettled++;
    this.#metrics.downlinkUnsettled.set(this.#unsettled);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      settle();
      this.#unsettled--;
      this.#metrics.downlinkUnsettled.set(this.#unsettled);
      if (this.#unsettled < this.#options.maxUnsettled) {
        this.#capacity.wakeAll();
      }
    };
  }

  #sendToDeadLetter(
    record: DownlinkRecord,
    rule: string | undefined,
    error: string,
    done: () => void,
  ): void {
    const topic = this.#router.deadLetterTopic;
    if (rule !== undefined) {
      this.#metrics.downlinkRules.add(rule, topic === undefined ? 'refused' : 'dead_lettered');
    }
    this.#metrics.deadLetters.add({
      direction: 'downlink',
      failures: [{ rule: rule ?? '(no rule matches)', error }],
      source: `${record.topic}/${record.partition}/${record.offset}`,
      deadLetterTopic: topic,
    });
    this.#log.warn(
      { topic: record.topic, offset: record.offset, rule, error },
      'downlink record not deliverable',
    );
    if (topic === undefined) {
      done();
      return;
    }
    this.#deadLetter(
      {
        topic,
        key: record.key?.toString() ?? null,
        value: record.value ?? Buffer.alloc(0),
        partition: undefined,
        timestamp: Date.now(),
        headers: {
          ...copyHeaders(record.headers),
          [DEAD_LETTER_HEADERS.error]: error,
          ...(rule !== undefined ? { [DEAD_LETTER_HEADERS.rule]: rule } : {}),
          'dead-letter-source': `${record.topic}/${record.partition}/${record.offset}`,
        },
      },
      done,
    );
  }

  async #commit(): Promise<void> {
    for (const group of this.#groups) {
      const commits = group.committable();
      if (commits.length === 0) continue;
      try {
        await group.consumer.commitOffsets(commits);
      } catch (error) {
        // a rebalance took the partitions: the new owner consumes from the last commit
        this.#log.warn({ err: error }, 'downlink offsets not committed');
      }
    }
  }
}

/** The sources of a router as text, to compare two versions. */
function sourcesKey(router: DownlinkRouter): string {
  return JSON.stringify(
    router.sources().map((source) => ({ ...source, pattern: source.pattern?.source })),
  );
}

function toDownlinkRecord(topic: string, partition: number, message: KafkaMessage): DownlinkRecord {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key,
    value: message.value,
    headers: message.headers ?? {},
    timestamp: message.timestamp,
  };
}

function toBrokerMessage(message: DownlinkMessage): BrokerMessage {
  return {
    topic: message.topic,
    payload: message.payload,
    qos: message.qos,
    retain: message.retain,
    properties: message.properties,
    expiresAt: message.expiresAt,
    origin: KAFKA_ORIGIN,
  };
}

/** Kafka headers of a consumed record, as headers of a record to produce. */
function copyHeaders(headers: DownlinkRecord['headers']): KafkaRecord['headers'] {
  const copied: KafkaRecord['headers'] = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) copied[name] = value;
  }
  return copied;
}

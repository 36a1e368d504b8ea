import { MappingError } from './rules/errors.js';
import type { MappingIssue } from './rules/errors.js';
import type { PartitionCounts } from './kafka/partition-counts.js';
import type { ProducerPipeline } from './kafka/producer-pipeline.js';
import { ReasonCode } from './mqtt/reason-codes.js';
import type { UplinkOutcome, UplinkSink } from './mqtt/uplink-sink.js';
import type { BridgeMetrics, UplinkRuleOutcome } from './observability/metrics.js';
import type { RuleFailure, Router, Routing } from './rules/router.js';
import type { RoutedRecord, UplinkPublish } from './rules/types.js';

type OnSettled = ((outcome: UplinkOutcome) => void) | undefined;

/** Topics whose next round-robin partition is remembered (templated topics are unbounded). */
const MAX_ROUND_ROBIN_TOPICS = 10_000;
/** The outcome of every stored publish (never changed). */
const STORED: UplinkOutcome = Object.freeze({ kind: 'stored' });
/** Publishes waiting for partition counts beyond which the uplink reports congestion. */
const MAX_WAITING = 10_000;

/**
 * The uplink: the rules turn a publish into records, partitions the rules leave to the bridge
 * (round-robin, checked numbers) are settled against Kafka's partition counts, and the
 * pipeline produces the records.
 */
export class KafkaUplink implements UplinkSink {
  #router: Router;
  readonly #pipeline: ProducerPipeline;
  readonly #metrics: BridgeMetrics;
  readonly #partitions: PartitionCounts;
  /** Next round-robin partition per topic, the least recently used forgotten first. */
  readonly #roundRobin = new Map<string, number>();
  /**
   * Per Kafka topic, the last publish with records there that waits (for a partition count, or
   * behind another that waits): later publishes to that topic wait for it, so Kafka gets each
   * topic's records in the order their publishes arrived; other topics do not wait.
   */
  readonly #tails = new Map<string, Promise<void>>();
  readonly #maxWaiting: number;
  #waiting = 0;
  #waitingCongested = false;
  #pipelineCongested = false;
  readonly #congestionListeners: Array<(congested: boolean) => void> = [];

  constructor(
    router: Router,
    pipeline: ProducerPipeline,
    metrics: BridgeMetrics,
    partitions: PartitionCounts,
    maxWaiting = MAX_WAITING,
  ) {
    this.#router = router;
    this.#pipeline = pipeline;
    this.#metrics = metrics;
    this.#partitions = partitions;
    this.#maxWaiting = maxWaiting;
  }

  /**
   * Refuses (MappingError, at the rule's `partition`) fixed partitions that their fixed topic
   * does not have, in the rules in use or in `router` (a candidate for `replaceRouter`). Topics
   * that do not exist yet are not checked; the counts are looked up afresh.
   */
  async checkFixedPartitions(router: Router = this.#router): Promise<void> {
    const fixed = router.fixedPartitions();
    await Promise.all(fixed.map(({ topic }) => this.#partitions.fetch(topic)));
    const issues: MappingIssue[] = [];
    for (const { rule, topic, partition } of fixed) {
      const count = this.#partitions.cached(topic);
      if (rule.to.partition.kind === 'fixed' && typeof count === 'number' && partition >= count) {
        issues.push({
          ...rule.to.partition.position,
          message: outOfRange(partition, topic, count),
        });
      }
    }
    if (issues.length > 0) throw new MappingError(issues);
  }

  /**
   * Routes every later publish with `router` (hot reload). Each publish is routed entirely by
   * the rules in use when the uplink took it; records already routed or enqueued are unaffected.
   */
  replaceRouter(router: Router): void {
    this.#router = router;
  }

  send(publish: UplinkPublish, onSettled: OnSettled): void {
    const router = this.#router;
    let routing: Routing;
    try {
      routing = router.route(publish);
    } catch (error) {
      this.#failed(publish, error, onSettled);
      return;
    }
    const missing = topicsToLookUp(routing, this.#partitions);
    if (missing.length === 0 && this.#tails.size === 0) {
      // the usual case: nothing waits, nothing to look up
      this.#settleSafely(router, publish, routing, onSettled);
      return;
    }
    const topics = topicsOf(routing);
    const waits: Array<Promise<void>> = missing.map((topic) => this.#partitions.fetch(topic));
    for (const topic of topics) {
      const tail = this.#tails.get(topic);
      if (tail) waits.push(tail);
    }
    if (waits.length === 0) {
      this.#settleSafely(router, publish, routing, onSettled);
      return;
    }
    this.#setWaiting(this.#waiting + 1);
    // lookups never reject, and #settleSafely never throws: `done` always resolves
    const done = Promise.all(waits).then(() => {
      this.#setWaiting(this.#waiting - 1);
      this.#settleSafely(router, publish, routing, onSettled);
    });
    for (const topic of topics) {
      this.#tails.set(topic, done);
      void done.then(() => {
        if (this.#tails.get(topic) === done) this.#tails.delete(topic);
      });
    }
  }

  /**
   * Called with true when the uplink takes no more publishes for now: Kafka is behind (the
   * pipeline's budget), or too many publishes wait for partition counts; false when it takes
   * them again.
   */
  onCongestion(listener: (congested: boolean) => void): void {
    if (this.#congestionListeners.length === 0) {
      this.#pipeline.onCongestion((congested) => {
        const before = this.congested;
        this.#pipelineCongested = congested;
        this.#tellCongestion(before);
      });
    }
    this.#congestionListeners.push(listener);
  }

  get congested(): boolean {
    return this.#pipelineCongested || this.#waitingCongested;
  }

  #setWaiting(waiting: number): void {
    this.#waiting = waiting;
    const before = this.congested;
    if (waiting >= this.#maxWaiting) this.#waitingCongested = true;
    else if (waiting <= this.#maxWaiting / 2) this.#waitingCongested = false;
    this.#tellCongestion(before);
  }

  #tellCongestion(before: boolean): void {
    const now = this.congested;
    if (now === before) return;
    for (const listener of this.#congestionListeners) listener(now);
  }

  /** A failure while routing or settling fails that publish only. */
  #settleSafely(router: Router, publish: UplinkPublish, routing: Routing, onSettled: OnSettled) {
    try {
      this.#settle(router, publish, routing, onSettled);
    } catch (error) {
      this.#failed(publish, error, onSettled);
    }
  }

  #failed(publish: UplinkPublish, error: unknown, onSettled: OnSettled): void {
    this.#metrics.uplinkErrors.inc();
    onSettled?.({
      kind: 'failed',
      reasonCode: ReasonCode.ImplementationSpecificError,
      reason: `publish to "${publish.topic}" failed: ${(error as Error).message}`,
    });
  }

  async close(): Promise<void> {
    await this.#partitions.close();
  }

  /** `router` is the one that routed the publish: its dead-letter settings apply, not newer ones. */
  #settle(router: Router, publish: UplinkPublish, routing: Routing, onSettled: OnSettled): void {
    switch (routing.kind) {
      case 'rejected':
        this.#metrics.mqttPublishesUnmapped.inc();
        onSettled?.({
          kind: 'failed',
          reasonCode: ReasonCode.TopicNameInvalid,
          reason: `no mapping rule matches topic "${publish.topic}"`,
          final: true,
        });
        return;
      case 'unmatched':
        this.#metrics.mqttPublishesUnmapped.inc();
        if (routing.records.length === 0) onSettled?.({ kind: 'unmatched' });
        else this.#produce(router, publish, routing.records, onSettled);
        return;
      case 'invalid':
        this.#invalid(publish, routing.failures, routing.records, onSettled);
        return;
      case 'mapped': {
        const failures = this.#choosePartitions(routing.records);
        if (failures !== undefined) {
          const deadLetter = router.deadLetter(publish, failures);
          if (deadLetter.kind === 'invalid') {
            this.#invalid(publish, deadLetter.failures, deadLetter.records, onSettled);
          }
          return;
        }
        this.#produce(router, publish, routing.records, onSettled);
      }
    }
  }

  /**
   * Round-robin partitions, and checks of explicit ones; returns the records that cannot go
   * (undefined: none, the usual case, with nothing allocated).
   */
  #choosePartitions(records: RoutedRecord[]): RuleFailure[] | undefined {
    let failures: RuleFailure[] | undefined;
    for (const { rule, partitioner, record } of records) {
      if (partitioner === 'hash') continue;
      const count = this.#partitions.cached(record.topic);
      if (typeof count !== 'number') {
        // Unknown count: an explicit partition goes as it is, and Kafka judges it.
        if (partitioner === 'round-robin') {
          const why = this.#partitions.error(record.topic) ?? 'unknown';
          failures ??= [];
          failures.push({ rule, error: `partition count of "${record.topic}" unknown: ${why}` });
        }
      } else if (partitioner === 'round-robin') {
        const next = this.#roundRobin.get(record.topic) ?? 0;
        record.partition = next % count;
        // re-inserted: the map's order is from least to most recently used
        this.#roundRobin.delete(record.topic);
        this.#roundRobin.set(record.topic, (next + 1) % count);
        if (this.#roundRobin.size > MAX_ROUND_ROBIN_TOPICS) {
          const oldest = this.#roundRobin.keys().next().value;
          if (oldest !== undefined) this.#roundRobin.delete(oldest);
        }
      } else if (record.partition !== undefined && record.partition >= count) {
        failures ??= [];
        failures.push({ rule, error: outOfRange(record.partition, record.topic, count) });
      }
    }
    return failures;
  }

  /**
   * Produces a publish's records. Refused for good (topic missing, not
   * authorized, too large): the publish goes to the dead-letter topic when
   * there is one, and the client still learns Kafka's reason.
   */
  #produce(
    router: Router,
    publish: UplinkPublish,
    records: RoutedRecord[],
    onSettled: OnSettled,
  ): void {
    this.#pipeline.enqueue(
      records.map((entry) => entry.record),
      (failure) => {
        if (!failure) {
          for (const { rule } of records) this.#metrics.uplinkRules.add(rule, 'produced');
          onSettled?.(STORED);
          return;
        }
        const refused: UplinkOutcome = {
          kind: 'failed',
          reasonCode: failure.reasonCode,
          reason: failure.reason,
        };
        const routing = failure.timedOut
          ? undefined
          : router.deadLetter(
              publish,
              records.map(({ rule }) => ({ rule, error: failure.reason })),
            );
        const deadLetter = routing?.kind === 'invalid' ? routing.records : undefined;
        const rules = records.map(({ rule }) => rule);
        // Kafka refused the records (not: unreachable until the ack timeout)
        if (!failure.timedOut) {
          this.#recordDeadLetter(
            publish,
            rules.map((rule) => ({ rule, error: failure.reason })),
            deadLetter?.length ? router.settings.deadLetterTopic : undefined,
          );
        }
        if (!deadLetter?.length) {
          this.#countRules(rules, 'refused');
          onSettled?.(refused);
          return;
        }
        this.#metrics.uplinkDeadLettered.inc();
        this.#pipeline.enqueue(
          deadLetter.map((entry) => entry.record),
          (deadLetterFailure) => {
            this.#countRules(rules, deadLetterFailure ? 'refused' : 'dead_lettered');
            onSettled?.(deadLetterFailure ? refused : { ...refused, final: true });
          },
        );
      },
    );
  }

  /** 0x99 once the dead letter (if any) is in Kafka; a failed dead letter reports Kafka's error. */
  #invalid(
    publish: UplinkPublish,
    failures: RuleFailure[],
    deadLetters: RoutedRecord[],
    onSettled: OnSettled,
  ): void {
    this.#metrics.uplinkInvalidPayloads.inc();
    this.#recordDeadLetter(publish, failures, deadLetters[0]?.record.topic);
    const reason = failures.map((failure) => `${failure.rule}: ${failure.error}`).join('; ');
    const invalid: UplinkOutcome = {
      kind: 'failed',
      reasonCode: ReasonCode.PayloadFormatInvalid,
      reason,
      final: true,
    };
    const rules = failures.map(({ rule }) => rule);
    if (deadLetters.length === 0) {
      this.#countRules(rules, 'refused');
      onSettled?.(invalid);
      return;
    }
    this.#pipeline.enqueue(
      deadLetters.map((entry) => entry.record),
      (failure) => {
        this.#countRules(rules, failure ? 'refused' : 'dead_lettered');
        onSettled?.(failure ? { kind: 'failed', ...failure } : invalid);
      },
    );
  }

  /** For GET /api/dead-letters: which rules failed a publish, and why. */
  #recordDeadLetter(
    publish: UplinkPublish,
    failures: RuleFailure[],
    deadLetterTopic: string | undefined,
  ): void {
    this.#metrics.deadLetters.add({
      direction: 'uplink',
      failures: failures.map(({ rule, error }) => ({ rule, error })),
      mqttTopic: publish.topic,
      clientId: publish.clientId,
      deadLetterTopic,
    });
  }

  /** One more record of each rule (a rule named twice: two) ended with `outcome`. */
  #countRules(rules: string[], outcome: UplinkRuleOutcome): void {
    for (const rule of rules) this.#metrics.uplinkRules.add(rule, outcome);
  }
}

function outOfRange(partition: number, topic: string, count: number): string {
  return `partition ${partition} is out of range: Kafka topic "${topic}" has ${count} partition${count === 1 ? '' : 's'}`;
}

/** Topics whose partition count the routing's records need and nobody has looked up yet. */
/** The Kafka topics of a publish's records. */
function topicsOf(routing: Routing): string[] {
  if (routing.kind === 'rejected') return [];
  return [...new Set(routing.records.map(({ record }) => record.topic))];
}

function topicsToLookUp(routing: Routing, partitions: PartitionCounts): readonly string[] {
  if (routing.kind !== 'mapped') return NONE;
  let topics: Set<string> | undefined;
  for (const { partitioner, record } of routing.records) {
    if (partitioner !== 'hash' && partitions.cached(record.topic) === undefined) {
      topics ??= new Set<string>();
      topics.add(record.topic);
    }
  }
  return topics === undefined ? NONE : [...topics];
}

/** No topics (shared: nothing is allocated per publish in the usual case). */
const NONE: readonly string[] = Object.freeze([]);

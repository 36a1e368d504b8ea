import { MappingError } from './rules/errors.js';
import type { MappingIssue } from './rules/errors.js';
import type { PartitionCounts } from './kafka/partition-counts.js';
import type { ProducerPipeline } from './kafka/producer-pipeline.js';
import { ReasonCode } from './mqtt/reason-codes.js';
import type { UplinkOutcome, UplinkSink } from './mqtt/uplink-sink.js';
import type { BridgeMetrics } from './observability/metrics.js';
import type { RuleFailure, Router, Routing } from './rules/router.js';
import type { RoutedRecord, UplinkPublish } from './rules/types.js';

type OnSettled = ((outcome: UplinkOutcome) => void) | undefined;

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
  /** Next round-robin partition per topic. */
  readonly #roundRobin = new Map<string, number>();
  /** Publishes waiting, in order, behind one whose topics' partition counts are being fetched. */
  #backlog: Array<() => void> | undefined;

  constructor(
    router: Router,
    pipeline: ProducerPipeline,
    metrics: BridgeMetrics,
    partitions: PartitionCounts,
  ) {
    this.#router = router;
    this.#pipeline = pipeline;
    this.#metrics = metrics;
    this.#partitions = partitions;
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
    if (this.#backlog !== undefined) {
      this.#backlog.push(() => {
        this.send(publish, onSettled);
      });
      return;
    }
    const router = this.#router;
    const routing = router.route(publish);
    const missing = topicsToLookUp(routing, this.#partitions);
    if (missing.length === 0) {
      this.#settle(router, publish, routing, onSettled);
      return;
    }
    const backlog: Array<() => void> = [];
    this.#backlog = backlog;
    void Promise.all(missing.map((topic) => this.#partitions.fetch(topic))).then(() => {
      this.#backlog = undefined;
      this.#settle(router, publish, routing, onSettled);
      for (const next of backlog) next();
    });
  }

  onCongestion(listener: (congested: boolean) => void): void {
    this.#pipeline.onCongestion(listener);
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
        this.#invalid(routing.failures, routing.records, onSettled);
        return;
      case 'mapped': {
        const failures = this.#choosePartitions(routing.records);
        if (failures.length > 0) {
          const deadLetter = router.deadLetter(publish, failures);
          if (deadLetter.kind === 'invalid') {
            this.#invalid(deadLetter.failures, deadLetter.records, onSettled);
          }
          return;
        }
        this.#produce(router, publish, routing.records, onSettled);
      }
    }
  }

  /** Round-robin partitions, and checks of explicit ones; returns the records that cannot go. */
  #choosePartitions(records: RoutedRecord[]): RuleFailure[] {
    const failures: RuleFailure[] = [];
    for (const { rule, partitioner, record } of records) {
      if (partitioner === 'hash') continue;
      const count = this.#partitions.cached(record.topic);
      if (typeof count !== 'number') {
        // Unknown count: an explicit partition goes as it is, and Kafka judges it.
        if (partitioner === 'round-robin') {
          const why = this.#partitions.error(record.topic) ?? 'unknown';
          failures.push({ rule, error: `partition count of "${record.topic}" unknown: ${why}` });
        }
      } else if (partitioner === 'round-robin') {
        const next = this.#roundRobin.get(record.topic) ?? 0;
        record.partition = next % count;
        this.#roundRobin.set(record.topic, (next + 1) % count);
      } else if (record.partition !== undefined && record.partition >= count) {
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
          onSettled?.({ kind: 'stored' });
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
        if (!deadLetter?.length) {
          onSettled?.(refused);
          return;
        }
        this.#metrics.uplinkDeadLettered.inc();
        this.#pipeline.enqueue(
          deadLetter.map((entry) => entry.record),
          (deadLetterFailure) => {
            onSettled?.(deadLetterFailure ? refused : { ...refused, final: true });
          },
        );
      },
    );
  }

  /** 0x99 once the dead letter (if any) is in Kafka; a failed dead letter reports Kafka's error. */
  #invalid(failures: RuleFailure[], deadLetters: RoutedRecord[], onSettled: OnSettled): void {
    this.#metrics.uplinkInvalidPayloads.inc();
    const reason = failures.map((failure) => `${failure.rule}: ${failure.error}`).join('; ');
    const invalid: UplinkOutcome = {
      kind: 'failed',
      reasonCode: ReasonCode.PayloadFormatInvalid,
      reason,
      final: true,
    };
    if (deadLetters.length === 0) {
      onSettled?.(invalid);
      return;
    }
    this.#pipeline.enqueue(
      deadLetters.map((entry) => entry.record),
      onSettled &&
        ((failure) => {
          onSettled(failure ? { kind: 'failed', ...failure } : invalid);
        }),
    );
  }
}

function outOfRange(partition: number, topic: string, count: number): string {
  return `partition ${partition} is out of range: Kafka topic "${topic}" has ${count} partition${count === 1 ? '' : 's'}`;
}

/** Topics whose partition count the routing's records need and nobody has looked up yet. */
function topicsToLookUp(routing: Routing, partitions: PartitionCounts): string[] {
  if (routing.kind !== 'mapped') return [];
  const topics = new Set<string>();
  for (const { partitioner, record } of routing.records) {
    if (partitioner !== 'hash' && partitions.cached(record.topic) === undefined) {
      topics.add(record.topic);
    }
  }
  return [...topics];
}

import { encodeValue } from './codecs/value.js';
import { PayloadError } from './errors.js';
import { DEAD_LETTER_HEADERS, buildHeaders } from './headers.js';
import type { HeaderSpec } from './headers.js';
import { choosePartition } from './partition.js';
import { PayloadJson } from './payload-json.js';
import type { MappingSettings, UplinkRule } from './rule.js';
import type { TemplateScope } from './templates.js';
import { timestampOf } from './timestamp.js';
import { TopicTrie, type TopicMatch } from './topic-trie.js';
import type { RoutedRecord, UplinkPublish } from './types.js';
import { kafkaTopicProblem } from './kafka-topic-name.js';

/** Why a rule could not turn a publish into a record. */
export interface RuleFailure {
  rule: string;
  error: string;
}

/** What the rules make of one publish. */
export type Routing =
  /** One record per matching rule, in declaration order. */
  | { kind: 'mapped'; records: RoutedRecord[] }
  /** No rule matched: `records` holds the record of `unmatched: forward`, else nothing. */
  | { kind: 'unmatched'; records: RoutedRecord[] }
  /** No rule matched and `unmatched: reject` refuses the publish. */
  | { kind: 'rejected' }
  /** A matching rule cannot encode the payload: no rule record is sent, only a dead letter. */
  | { kind: 'invalid'; failures: RuleFailure[]; records: RoutedRecord[] };

export const DEFAULT_SETTINGS: MappingSettings = {
  unmatched: { action: 'drop' },
  deadLetterTopic: undefined,
};

/** The rule name `mappings test` and logs show for records no rule wrote. */
export const UNMATCHED_RULE = '(unmatched)';
export const DEAD_LETTER_RULE = '(dead letter)';

const FORWARD_HEADERS: HeaderSpec = {
  mqttHeaders: ['topic', 'clientId', 'userProperties'],
  headers: [],
};
const DEAD_LETTER_SPEC: HeaderSpec = {
  mqttHeaders: ['topic', 'clientId', 'username', 'contentType', 'userProperties'],
  headers: [],
};

/**
 * Topics whose matching rules (and captures) are remembered: devices publish to the same few
 * topics again and again. Beyond it the oldest remembered topic is forgotten.
 */
const MAX_CACHED_TOPICS = 10_000;

/** Turns publishes into Kafka records according to the loaded rules. */
export class Router {
  readonly ruleCount: number;
  readonly settings: MappingSettings;
  /** In declaration order. */
  readonly rules: readonly UplinkRule[];
  private readonly trie = new TopicTrie<UplinkRule>();
  /** Matches by topic (read only: the captures are shared by the publishes of a topic). */
  readonly #matches = new Map<string, ReadonlyArray<TopicMatch<UplinkRule>>>();

  /** `rules` in declaration order, which is the order of fan-out records. */
  constructor(rules: readonly UplinkRule[], settings: MappingSettings = DEFAULT_SETTINGS) {
    this.rules = rules;
    this.ruleCount = rules.length;
    this.settings = settings;
    for (const rule of rules) {
      for (const filter of rule.filters) this.trie.insert(filter, rule);
    }
  }

  route(publish: UplinkPublish): Routing {
    const records: RoutedRecord[] = [];
    // made at the first failure: most publishes have none
    let failures: RuleFailure[] | undefined;
    const json = new PayloadJson(publish.payload);
    const now = Date.now();
    let previous: UplinkRule | undefined;
    // Matches come in insertion order: a rule's filters are adjacent, the first one wins.
    for (const { value: rule, captures } of this.#match(publish.topic)) {
      if (rule === previous) continue;
      previous = rule;
      const scope: TemplateScope = { publish, captures, json };
      if (!holdsAll(rule.conditions, scope)) continue;
      try {
        records.push(toRecord(rule, scope, now));
      } catch (error) {
        if (!(error instanceof PayloadError)) throw error;
        failures ??= [];
        failures.push({ rule: rule.name, error: error.message });
      }
      if (rule.final) break;
    }
    if (failures !== undefined) return this.deadLetter(publish, failures);
    if (records.length > 0) return { kind: 'mapped', records };
    return this.#unmatched(publish, json, now);
  }

  /** The rules matching a topic, in insertion order, with their captures. */
  #match(topic: string): ReadonlyArray<TopicMatch<UplinkRule>> {
    let matches = this.#matches.get(topic);
    if (matches === undefined) {
      matches = this.trie.match(topic);
      if (this.#matches.size >= MAX_CACHED_TOPICS) {
        const oldest = this.#matches.keys().next().value;
        if (oldest !== undefined) this.#matches.delete(oldest);
      }
      this.#matches.set(topic, matches);
    }
    return matches;
  }

  /** The routing of a publish that `failures` make undeliverable: a dead letter if configured. */
  deadLetter(publish: UplinkPublish, failures: RuleFailure[]): Routing {
    const topic = this.settings.deadLetterTopic;
    if (topic === undefined) return { kind: 'invalid', failures, records: [] };
    const headers = buildHeaders(DEAD_LETTER_SPEC, {
      publish,
      captures: {},
      json: new PayloadJson(publish.payload),
    });
    headers[DEAD_LETTER_HEADERS.rule] = failures.map((failure) => failure.rule);
    headers[DEAD_LETTER_HEADERS.error] = failures.map((failure) => failure.error);
    const record = {
      topic,
      key: publish.topic,
      value: publish.payload,
      partition: undefined,
      timestamp: Date.now(),
      headers,
    };
    return {
      kind: 'invalid',
      failures,
      records: [{ rule: DEAD_LETTER_RULE, partitioner: 'hash', record }],
    };
  }

  /** The Kafka topics that do not depend on the publish, sorted, without repeats. */
  kafkaTopics(): string[] {
    const topics = new Set<string>();
    for (const rule of this.rules) {
      if (rule.to.topic.constant !== undefined) topics.add(rule.to.topic.constant);
    }
    const { unmatched, deadLetterTopic } = this.settings;
    if (unmatched.action === 'forward') topics.add(unmatched.topic);
    if (deadLetterTopic !== undefined) topics.add(deadLetterTopic);
    return [...topics].sort();
  }

  /** Rules with a fixed partition number and a fixed topic: checkable before any publish. */
  fixedPartitions(): Array<{ rule: UplinkRule; topic: string; partition: number }> {
    return this.rules.flatMap((rule) => {
      const { partition, topic } = rule.to;
      if (partition.kind !== 'fixed' || topic.constant === undefined) return [];
      return [{ rule, topic: topic.constant, partition: partition.partition }];
    });
  }

  #unmatched(publish: UplinkPublish, json: PayloadJson, now: number): Routing {
    const policy = this.settings.unmatched;
    if (policy.action === 'reject') return { kind: 'rejected' };
    if (policy.action === 'drop') return { kind: 'unmatched', records: [] };
    const headers = buildHeaders(FORWARD_HEADERS, { publish, captures: {}, json });
    const record = {
      topic: policy.topic,
      key: publish.topic,
      value: publish.payload,
      partition: undefined,
      timestamp: now,
      headers,
    };
    return { kind: 'unmatched', records: [{ rule: UNMATCHED_RULE, partitioner: 'hash', record }] };
  }
}

/** The record of one rule; throws a PayloadError when the payload does not fit the rule. */
function toRecord(rule: UplinkRule, scope: TemplateScope, now: number): RoutedRecord {
  const { to } = rule;
  const timestamp = timestampOf(to.timestamp, scope.json, now);
  const { partitioner, partition } = choosePartition(to.partition, scope);
  const topic = to.topic.render(scope);
  const problem = to.topic.constant === undefined ? kafkaTopicProblem(topic) : undefined;
  if (problem !== undefined) throw new PayloadError(`the Kafka topic "${topic}" ${problem}`);
  return {
    rule: rule.name,
    partitioner,
    record: {
      topic,
      key: to.key === undefined ? scope.publish.topic : to.key.render(scope),
      value: encodeValue(rule.value, scope, timestamp),
      partition,
      timestamp,
      headers: buildHeaders(to, scope),
    },
  };
}

/** Whether every condition holds (a loop: no closure per publish, as `every` would take). */
function holdsAll(
  conditions: ReadonlyArray<(scope: TemplateScope) => boolean>,
  scope: TemplateScope,
): boolean {
  for (const holds of conditions) if (!holds(scope)) return false;
  return true;
}

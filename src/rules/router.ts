import { buildHeaders } from './headers.js';
import type { UplinkRule } from './rule.js';
import type { TemplateScope } from './templates.js';
import { TopicTrie } from './topic-trie.js';
import type { KafkaRecord, RoutedRecord, UplinkPublish } from './types.js';

/** Turns publishes into Kafka records according to the loaded rules. */
export class Router {
  readonly ruleCount: number;
  private readonly rules: readonly UplinkRule[];
  private readonly trie = new TopicTrie<UplinkRule>();

  /** `rules` in declaration order, which is the order of fan-out records. */
  constructor(rules: readonly UplinkRule[]) {
    this.rules = rules;
    this.ruleCount = rules.length;
    for (const rule of rules) {
      for (const filter of rule.filters) this.trie.insert(filter, rule);
    }
  }

  /** One record per matching rule, in rule declaration order; [] when nothing matches. */
  route(publish: UplinkPublish): RoutedRecord[] {
    const routed: RoutedRecord[] = [];
    let previous: UplinkRule | undefined;
    // Matches come in insertion order: a rule's filters are adjacent, the first one wins.
    for (const { value: rule, captures } of this.trie.match(publish.topic)) {
      if (rule === previous) continue;
      previous = rule;
      routed.push({ rule: rule.name, record: toRecord(rule, { publish, captures }) });
    }
    return routed;
  }

  /** The Kafka topics of rules whose topic template uses no variable, sorted, without repeats. */
  kafkaTopics(): string[] {
    const topics = new Set<string>();
    for (const rule of this.rules) {
      if (rule.to.topic.constant !== undefined) topics.add(rule.to.topic.constant);
    }
    return [...topics].sort();
  }
}

function toRecord(rule: UplinkRule, scope: TemplateScope): KafkaRecord {
  return {
    topic: rule.to.topic.render(scope),
    key: rule.to.key === undefined ? scope.publish.topic : rule.to.key.render(scope),
    value: scope.publish.payload,
    partition: rule.to.partition,
    headers: buildHeaders(rule.to, scope),
  };
}

import type {
  BridgeMetrics,
  DownlinkRuleOutcome,
  UplinkRuleOutcome,
} from '../observability/metrics.js';
import type { Mappings } from '../rules/load.js';
import { UNMATCHED_RULE } from '../rules/router.js';
import type { SourcePosition } from '../rules/types.js';

/*
 * GET /api/rules: the rules in use, where each is written, and what became of its messages (the
 * counts behind bridge_uplink_rule_records_total and bridge_downlink_rule_messages_total, since
 * the bridge started; a reload keeps the counts of rules that keep their name).
 */

interface RuleLocation {
  name: string;
  /** `file:line` of the rule's name in its mapping file. */
  at: string;
  file: string;
  line: number;
}

export interface UplinkRuleView extends RuleLocation {
  /** The MQTT topic filters the rule reads. */
  from: string[];
  /** The Kafka topic, as written (a template). */
  to: string;
  counts: Record<UplinkRuleOutcome, number>;
}

export interface DownlinkRuleView extends RuleLocation {
  from: { topics: string[] | null; pattern: string | null; group: string | null };
  /** The MQTT topic, as written (a template). */
  to: string;
  counts: Record<DownlinkRuleOutcome, number>;
}

export interface RulesView {
  uplink: UplinkRuleView[];
  downlink: DownlinkRuleView[];
  /** What happens to a publish no rule matches; `counts`: its records, when forwarded. */
  unmatched: {
    action: 'drop' | 'reject' | 'forward';
    topic: string | null;
    counts: Record<UplinkRuleOutcome, number>;
  };
  deadLetterTopic: string | null;
}

function located(name: string, position: SourcePosition): RuleLocation {
  return {
    name,
    at: `${position.file}:${position.line}`,
    file: position.file,
    line: position.line,
  };
}

export function rulesView(mappings: Mappings, metrics: BridgeMetrics): RulesView {
  const { unmatched, deadLetterTopic } = mappings.uplink.settings;
  return {
    uplink: mappings.uplink.rules.map((rule) => ({
      ...located(rule.name, rule.position),
      from: rule.filters.map((filter) => filter.text),
      to: rule.to.topic.source,
      counts: metrics.uplinkRules.get(rule.name),
    })),
    downlink: mappings.downlink.rules.map((rule) => ({
      ...located(rule.name, rule.position),
      from: {
        topics: rule.from.topics ? [...rule.from.topics] : null,
        // as written: the rule anchors it as ^(?:pattern)$
        pattern: rule.from.pattern ? unanchored(rule.from.pattern.source) : null,
        group: rule.from.group ?? null,
      },
      to: rule.to.topic.source,
      counts: metrics.downlinkRules.get(rule.name),
    })),
    unmatched: {
      action: unmatched.action,
      topic: unmatched.action === 'forward' ? unmatched.topic : null,
      counts: metrics.uplinkRules.get(UNMATCHED_RULE),
    },
    deadLetterTopic: deadLetterTopic ?? null,
  };
}

function unanchored(source: string): string {
  return source.startsWith('^(?:') && source.endsWith(')$') ? source.slice(4, -2) : source;
}

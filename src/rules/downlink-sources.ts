import type { DownlinkRule } from './downlink-rule.js';
import { formatPosition } from './errors.js';
import type { MappingIssue } from './errors.js';

/**
 * Rules that read one topic must agree on the consumer group and start position, or the
 * topic's records would be read, and delivered, once per group. Checked for listed topics,
 * and for patterns against listed topics; two patterns that overlap are not detected.
 */
export function sourceConflicts(rules: readonly DownlinkRule[]): MappingIssue[] {
  const issues: MappingIssue[] = [];
  rules.forEach((rule, index) => {
    for (const earlier of rules.slice(0, index)) {
      const shared = sharedTopic(rule, earlier);
      if (shared === undefined) continue;
      const a = rule.from;
      const b = earlier.from;
      if (a.group === b.group && a.start === b.start) continue;
      issues.push({
        ...a.position,
        message: `topic "${shared}" is also read by rule "${earlier.name}" (${formatPosition(b.position)}) with ${describe(b)}; rules reading one topic need the same group and start, here ${describe(a)}`,
      });
      return;
    }
  });
  return issues;
}

function sharedTopic(a: DownlinkRule, b: DownlinkRule): string | undefined {
  const aTopics = a.from.topics ?? [];
  const bTopics = b.from.topics ?? [];
  return (
    aTopics.find((topic) => bTopics.includes(topic) || b.from.pattern?.test(topic)) ??
    bTopics.find((topic) => a.from.pattern?.test(topic))
  );
}

function describe(from: DownlinkRule['from']): string {
  const group = from.group === undefined ? 'the default group' : `group "${from.group}"`;
  return `${group}, start ${from.start}`;
}

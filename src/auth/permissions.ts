import { parseTopicFilter } from '../mqtt/topic-tree.js';
import { expandDenyPattern, expandPattern, matchesName } from './acl.js';
import type { AclRule, NamePattern, PlaceholderValues } from './acl.js';
import { TopicPatternSet, intersectFilters } from './topic-patterns.js';

/** What one connection may do. Build once per connection; the checks do not allocate patterns. */
export interface Permissions {
  /** Whether the client may publish to this topic name. */
  canPublish(topic: string): boolean;
  /**
   * Whether the client may subscribe to this filter: every topic it can match must be one the
   * client may receive. `$share/{group}/{filter}` and `$queue/{filter}` are judged on the
   * filter (and, when the rules name share groups, on the group); an invalid filter is never
   * allowed.
   */
  canSubscribe(filter: string): boolean;
  /**
   * Whether a message on this topic name may be delivered to the client, through an unshared
   * subscription or one of share group `shareGroup`: checked for every message delivered, as
   * Mosquitto checks its read ACL.
   */
  canReceive(topic: string, shareGroup?: string): boolean;
}

/** Everything allowed: the permissions of every client when authentication is off. */
export const ALLOW_ALL: Permissions = {
  canPublish: () => true,
  canSubscribe: () => true,
  canReceive: () => true,
};

/** Share group judges a connection keeps (a client may name any number of groups). */
const MAX_CACHED_GROUPS = 16;

/** How rules are read beyond their own content. */
export interface AclOptions {
  /**
   * Some rule of the file names share groups: rules without `shareGroups` are then about
   * unshared subscriptions only, and joining a share group needs a rule naming it.
   */
  shareGroupsRuled: boolean;
}

/** One rule for one connection: its effect and expanded patterns. */
interface CompiledRule {
  allow: boolean;
  patterns: string[];
  set: TopicPatternSet;
  /** Share group patterns of a `subscribe` rule, if it names any. */
  shareGroups: readonly NamePattern[] | undefined;
}

/**
 * Subscriptions judged against an ordered list of rules, first match wins: a filter is allowed
 * when every topic it can match is first matched by an `allow` rule. That holds exactly when the
 * `allow` rules together cover the filter, and every part of the filter a `deny` rule overlaps
 * is covered by the `allow` rules before that `deny`.
 */
class SubscribeJudge {
  readonly #rules: CompiledRule[];
  readonly #allowed = new TopicPatternSet();
  readonly #denies: Array<{ patterns: string[]; allowedBefore: TopicPatternSet }> = [];

  constructor(rules: CompiledRule[]) {
    this.#rules = rules;
    const allowPatterns: string[] = [];
    for (const rule of rules) {
      if (rule.allow) {
        allowPatterns.push(...rule.patterns);
        for (const pattern of rule.patterns) this.#allowed.add(pattern);
      } else if (rule.patterns.length > 0) {
        const allowedBefore = new TopicPatternSet();
        for (const pattern of allowPatterns) allowedBefore.add(pattern);
        this.#denies.push({ patterns: rule.patterns, allowedBefore });
      }
    }
  }

  /** `filter`: valid and unshared. */
  allows(filter: string): boolean {
    for (const { patterns, allowedBefore } of this.#denies) {
      for (const pattern of patterns) {
        const overlap = intersectFilters(filter, pattern);
        if (overlap !== undefined && !allowedBefore.covers(overlap)) return false;
      }
    }
    return this.#allowed.covers(filter);
  }

  receives(topic: string): boolean {
    for (const rule of this.#rules) if (rule.set.matches(topic)) return rule.allow;
    return false;
  }
}

/**
 * Permissions from ordered `allow` and `deny` rules for one connection's values: for each
 * publish, subscription and delivery the first rule that matches decides; nothing matching is
 * denied.
 */
export function aclPermissions(
  rules: readonly AclRule[],
  values: PlaceholderValues,
  options: AclOptions = { shareGroupsRuled: false },
): Permissions {
  const publish: CompiledRule[] = [];
  const subscribe: CompiledRule[] = [];
  for (const rule of rules) {
    const patterns: string[] = [];
    for (const template of rule.topics) {
      // an unusable value leaves an allow rule out, and makes a deny rule deny more
      const pattern =
        rule.effect === 'allow'
          ? expandPattern(template, values)
          : expandDenyPattern(template, values);
      if (pattern !== undefined) patterns.push(pattern);
    }
    const set = new TopicPatternSet();
    for (const pattern of patterns) set.add(pattern);
    const compiled = { allow: rule.effect === 'allow', patterns, set };
    if (rule.action !== 'subscribe' && rule.shareGroups === undefined) {
      publish.push({ ...compiled, shareGroups: undefined });
    }
    if (rule.action !== 'publish') subscribe.push({ ...compiled, shareGroups: rule.shareGroups });
  }
  const { shareGroupsRuled } = options;
  const unshared = new SubscribeJudge(subscribe.filter((rule) => rule.shareGroups === undefined));
  const sharedJudges = new Map<string, SubscribeJudge>();
  /** The rules about group `group`, built once per group name a connection uses. */
  const sharedJudge = (group: string): SubscribeJudge => {
    if (!shareGroupsRuled) return unshared;
    let judge = sharedJudges.get(group);
    if (judge === undefined) {
      if (sharedJudges.size >= MAX_CACHED_GROUPS) sharedJudges.clear();
      const applies = (rule: CompiledRule): boolean =>
        rule.shareGroups !== undefined && matchesName(rule.shareGroups, values, group);
      judge = new SubscribeJudge(subscribe.filter(applies));
      sharedJudges.set(group, judge);
    }
    return judge;
  };
  const judgeFor = (group: string | undefined): SubscribeJudge =>
    group === undefined ? unshared : sharedJudge(group);
  return {
    canPublish: (topic) => {
      for (const rule of publish) if (rule.set.matches(topic)) return rule.allow;
      return false;
    },
    canSubscribe: (filter) => {
      const parsed = parseTopicFilter(filter);
      if ('problem' in parsed) return false;
      return judgeFor(parsed.shareGroup).allows(parsed.filter);
    },
    canReceive: (topic, shareGroup) => judgeFor(shareGroup).receives(topic),
  };
}

import { parseTopicFilter } from '../mqtt/topic-tree.js';
import { expandPattern } from './acl.js';
import type { AclRule, PlaceholderValues } from './acl.js';
import { TopicPatternSet } from './topic-patterns.js';

/** What one connection may do. Build once per connection; the checks do not allocate patterns. */
export interface Permissions {
  /** Whether the client may publish to this topic name. */
  canPublish(topic: string): boolean;
  /**
   * Whether the client may subscribe to this filter: every topic it can match must be one the
   * client may receive. `$share/{group}/{filter}` and `$queue/{filter}` are judged on the
   * filter; an invalid filter is never allowed.
   */
  canSubscribe(filter: string): boolean;
}

/** Everything allowed: the permissions of every client when authentication is off. */
export const ALLOW_ALL: Permissions = {
  canPublish: () => true,
  canSubscribe: () => true,
};

/** Permissions from `allow` rules (nothing else is allowed), for one connection's values. */
export function aclPermissions(rules: readonly AclRule[], values: PlaceholderValues): Permissions {
  const publish = new TopicPatternSet();
  const subscribe = new TopicPatternSet();
  for (const rule of rules) {
    for (const template of rule.topics) {
      const pattern = expandPattern(template, values);
      if (pattern === undefined) continue;
      if (rule.allow !== 'subscribe') publish.add(pattern);
      if (rule.allow !== 'publish') subscribe.add(pattern);
    }
  }
  return {
    canPublish: (topic) => publish.matches(topic),
    canSubscribe: (filter) => {
      const parsed = parseTopicFilter(filter);
      return !('problem' in parsed) && subscribe.covers(parsed.filter);
    },
  };
}

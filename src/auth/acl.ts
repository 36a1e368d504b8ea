import { parseTopicFilter } from '../mqtt/topic-tree.js';
import type { OffsetIssue, ParseResult } from '../rules/errors.js';
import { closest } from '../rules/suggest.js';

/** What an ACL rule allows. */
export const ACL_ACTIONS = ['publish', 'subscribe', 'all'] as const;
export type AclAction = (typeof ACL_ACTIONS)[number];

/** The connection facts a topic pattern may name: `{username}`, `{clientId}`. */
export const PLACEHOLDERS = ['username', 'clientId'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
export type PlaceholderValues = Record<Placeholder, string | undefined>;

/** A topic pattern as written: text and placeholders, in order. */
export type PatternTemplate = ReadonlyArray<string | { placeholder: Placeholder }>;

/** One `allow` rule of an ACL. */
export interface AclRule {
  allow: AclAction;
  topics: PatternTemplate[];
}

/**
 * Parses an ACL topic pattern: an MQTT topic filter (`+`, `#`) whose text may name
 * `{username}` and `{clientId}`. Not a shared subscription: `$share/` and `$queue/` are
 * checked on the filter inside.
 */
export function parsePattern(text: string): ParseResult<PatternTemplate> {
  const issues: OffsetIssue[] = [];
  const parts: Array<string | { placeholder: Placeholder }> = [];
  const braces = /\{([^{}]*)\}|[{}]/g;
  let last = 0;
  for (let match = braces.exec(text); match !== null; match = braces.exec(text)) {
    const [whole, name] = match;
    if (name === undefined) {
      issues.push({ offset: match.index, message: `"${whole}" outside a placeholder` });
    } else if (isPlaceholder(name)) {
      if (match.index > last) parts.push(text.slice(last, match.index));
      parts.push({ placeholder: name });
    } else {
      const suggestion = closest(name, PLACEHOLDERS);
      const hint =
        suggestion === undefined
          ? ' ({username} or {clientId})'
          : ` (did you mean "{${suggestion}}"?)`;
      issues.push({ offset: match.index, message: `unknown placeholder "{${name}}"${hint}` });
    }
    last = match.index + whole.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  if (issues.length > 0) return { ok: false, issues };

  // A placeholder stands for a plain level text; check the filter syntax with one in its place.
  const sample = parts.map((part) => (typeof part === 'string' ? part : 'x')).join('');
  const parsed = parseTopicFilter(sample);
  if ('problem' in parsed) return { ok: false, issues: [{ offset: 0, message: parsed.problem }] };
  if (parsed.shareGroup !== undefined) {
    const message =
      'an ACL pattern names topics, not a shared subscription: write the filter alone';
    return { ok: false, issues: [{ offset: 0, message }] };
  }
  return { ok: true, value: parts };
}

/**
 * The pattern for one connection, or undefined when a value it names is unusable: absent,
 * empty, or containing `/`, `+` or `#` (which would widen the rule), or starting with `$` at
 * the start of the pattern (which would reach the server's `$` topics).
 */
export function expandPattern(
  template: PatternTemplate,
  values: PlaceholderValues,
): string | undefined {
  let pattern = '';
  for (const part of template) {
    if (typeof part === 'string') {
      pattern += part;
      continue;
    }
    const value = values[part.placeholder];
    if (value === undefined || value === '' || /[/+#]/.test(value)) return undefined;
    if (pattern === '' && value.startsWith('$')) return undefined;
    pattern += value;
  }
  return pattern;
}

/** Whether the pattern names `placeholder`. */
export function mentions(template: PatternTemplate, placeholder: Placeholder): boolean {
  return template.some((part) => typeof part !== 'string' && part.placeholder === placeholder);
}

function isPlaceholder(name: string): name is Placeholder {
  return (PLACEHOLDERS as readonly string[]).includes(name);
}

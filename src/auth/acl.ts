import { parseTopicFilter } from '../mqtt/topic-tree.js';
import type { OffsetIssue, ParseResult } from '../rules/errors.js';
import { closest } from '../rules/suggest.js';

/** What an ACL rule allows or denies. */
export const ACL_ACTIONS = ['publish', 'subscribe', 'all'] as const;
export type AclAction = (typeof ACL_ACTIONS)[number];

/** Whether a rule allows or denies what it names. */
export const ACL_EFFECTS = ['allow', 'deny'] as const;
export type AclEffect = (typeof ACL_EFFECTS)[number];

/**
 * The connection facts a pattern may name: `{username}`, `{clientId}` and, for a client that
 * authenticated with a JSON Web Token, `{claims.<name>}` (a dotted path into nested claims).
 */
export const PLACEHOLDER_KINDS = ['username', 'clientId', 'claims'] as const;
export type PlaceholderKind = (typeof PLACEHOLDER_KINDS)[number];
export type Placeholder = 'username' | 'clientId' | `claims.${string}`;

/** One connection's values for the placeholders. */
export interface PlaceholderValues {
  username: string | undefined;
  clientId: string | undefined;
  /** The verified claims of the client's token; undefined without one. */
  claims?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * A placeholder's value for one connection: undefined when absent. A claim counts when it is a
 * string, a finite number or a boolean (as its text); objects, lists and null do not.
 */
export function placeholderValue(
  values: PlaceholderValues,
  placeholder: Placeholder,
): string | undefined {
  if (placeholder === 'username' || placeholder === 'clientId') return values[placeholder];
  let value: unknown = values.claims;
  for (const name of placeholder.slice('claims.'.length).split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : undefined;
  }
  if (typeof value === 'string') return value;
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') {
    return String(value);
  }
  return undefined;
}

/** A topic pattern as written: text and placeholders, in order. */
export type PatternTemplate = ReadonlyArray<string | { placeholder: Placeholder }>;

/**
 * A name pattern (client ids, share group names) as written: text, placeholders and `*`
 * (any characters, also none), in order.
 */
export type NamePattern = ReadonlyArray<string | { placeholder: Placeholder } | { any: true }>;

/**
 * One rule of an ACL: `allow` or `deny` an action on topics. The rules of a client are judged in
 * order, the first that matches decides; nothing matching is denied.
 */
export interface AclRule {
  effect: AclEffect;
  action: AclAction;
  topics: PatternTemplate[];
  /**
   * Share group name patterns: the rule is about shared subscriptions in these groups only
   * (`subscribe` rules). Once any rule of a file names share groups, rules without them are
   * about unshared subscriptions only.
   */
  shareGroups?: NamePattern[];
}

/** Splits `{placeholder}`s out of a text; unknown or unbalanced braces are issues. */
function splitPlaceholders(
  text: string,
  known: readonly PlaceholderKind[],
): { parts: Array<string | { placeholder: Placeholder }>; issues: OffsetIssue[] } {
  const issues: OffsetIssue[] = [];
  const parts: Array<string | { placeholder: Placeholder }> = [];
  const braces = /\{([^{}]*)\}|[{}]/g;
  let last = 0;
  for (let match = braces.exec(text); match !== null; match = braces.exec(text)) {
    const [whole, name] = match;
    if (name === undefined) {
      issues.push({ offset: match.index, message: `"${whole}" outside a placeholder` });
    } else if (isPlaceholder(name) && known.includes(kindOf(name))) {
      if (match.index > last) parts.push(text.slice(last, match.index));
      parts.push({ placeholder: name });
    } else {
      const suggestion = closest(name, known);
      const names = known.map((kind) => (kind === 'claims' ? '{claims.<name>}' : `{${kind}}`));
      const list =
        names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : names.join('');
      const hint = suggestion === undefined ? ` (${list})` : ` (did you mean "{${suggestion}}"?)`;
      issues.push({ offset: match.index, message: `unknown placeholder "{${name}}"${hint}` });
    }
    last = match.index + whole.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return { parts, issues };
}

/**
 * Parses an ACL topic pattern: an MQTT topic filter (`+`, `#`) whose text may name
 * `{username}` and `{clientId}`. Not a shared subscription: `$share/` and `$queue/` are
 * checked on the filter inside.
 */
export function parsePattern(text: string): ParseResult<PatternTemplate> {
  const { parts, issues } = splitPlaceholders(text, PLACEHOLDER_KINDS);
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
 * Parses a name pattern (`clientIds`, `shareGroups`): text with `*` for any characters (also
 * none) and the placeholders in `known`.
 */
export function parseNamePattern(
  text: string,
  known: readonly PlaceholderKind[],
): ParseResult<NamePattern> {
  if (text === '') return { ok: false, issues: [{ offset: 0, message: 'empty name pattern' }] };
  const { parts, issues } = splitPlaceholders(text, known);
  if (issues.length > 0) return { ok: false, issues };
  const value: Array<string | { placeholder: Placeholder } | { any: true }> = [];
  for (const part of parts) {
    if (typeof part !== 'string') {
      value.push(part);
      continue;
    }
    part.split('*').forEach((piece, index) => {
      if (index > 0) value.push({ any: true });
      if (piece !== '') value.push(piece);
    });
  }
  return { ok: true, value };
}

/**
 * Whether a name matches one of the patterns for one connection's values. A pattern naming a
 * value that is absent or empty matches nothing; values are taken literally (a `*` in a user
 * name is not a wildcard).
 */
export function matchesName(
  patterns: readonly NamePattern[],
  values: PlaceholderValues,
  name: string,
): boolean {
  return patterns.some((pattern) => nameRegExp(pattern, values)?.test(name) === true);
}

/** The regular expression of a name pattern for these values; undefined: it matches nothing. */
export function nameRegExp(pattern: NamePattern, values: PlaceholderValues): RegExp | undefined {
  let source = '';
  for (const part of pattern) {
    if (typeof part === 'string') {
      source += escapeRegExp(part);
    } else if ('any' in part) {
      source += '.*';
    } else {
      const value = placeholderValue(values, part.placeholder);
      if (value === undefined || value === '') return undefined;
      source += escapeRegExp(value);
    }
  }
  return new RegExp(`^${source}$`, 'su');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether the name pattern names a placeholder of this kind. */
export function nameMentions(pattern: NamePattern, kind: PlaceholderKind): boolean {
  return pattern.some(
    (part) =>
      typeof part !== 'string' && 'placeholder' in part && kindOf(part.placeholder) === kind,
  );
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
    const value = placeholderValue(values, part.placeholder);
    if (value === undefined || value === '' || /[/+#]/.test(value)) return undefined;
    if (pattern === '' && value.startsWith('$')) return undefined;
    pattern += value;
  }
  return pattern;
}

/**
 * The pattern of a `deny` rule for one connection. Leaving a deny rule out would widen what the
 * client may do, so a value that is absent, empty or contains `/`, `+` or `#` makes the rule
 * deny more instead: everything from the level holding it down (`users/{username}/private/#`
 * with user name `a/b` denies `users/#`). A value starting with `$` is taken as it is.
 */
export function expandDenyPattern(template: PatternTemplate, values: PlaceholderValues): string {
  let pattern = '';
  for (const part of template) {
    if (typeof part === 'string') {
      pattern += part;
      continue;
    }
    const value = placeholderValue(values, part.placeholder);
    if (value === undefined || value === '' || /[/+#]/.test(value)) {
      const levels = pattern.split('/');
      levels[levels.length - 1] = '#';
      return levels.join('/');
    }
    pattern += value;
  }
  return pattern;
}

/** Whether the pattern names a placeholder of this kind. */
export function mentions(template: PatternTemplate, kind: PlaceholderKind): boolean {
  return template.some((part) => typeof part !== 'string' && kindOf(part.placeholder) === kind);
}

/** `username`, `clientId`, or `claims.` followed by dot-separated non-empty names. */
function isPlaceholder(name: string): name is Placeholder {
  return name === 'username' || name === 'clientId' || /^claims(\.[^.]+)+$/u.test(name);
}

function kindOf(placeholder: Placeholder): PlaceholderKind {
  return placeholder.startsWith('claims.') ? 'claims' : (placeholder as PlaceholderKind);
}

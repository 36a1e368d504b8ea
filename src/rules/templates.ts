import type { OffsetIssue, ParseResult } from './errors.js';
import { VARIABLE_NAME, VARIABLE_NAME_RULE } from './filter.js';
import { FIELD_PATH_RULE, jsonText, parseFieldPath } from './payload-json.js';
import type { PayloadJson } from './payload-json.js';
import { didYouMean } from './suggest.js';
import type { UplinkPublish } from './types.js';

/**
 * What a template is rendered against: the publish, the captures of the filter that matched, and
 * the payload read as JSON for `{payload.field}` variables.
 */
export interface TemplateScope {
  publish: UplinkPublish;
  captures: Readonly<Record<string, string>>;
  json: PayloadJson;
}

/** `{payload.a.b}`: a field of the JSON payload. */
const PAYLOAD_PREFIX = 'payload.';

const QOS_TEXT = ['0', '1', '2'] as const;

const BUILTINS: ReadonlyMap<string, (scope: TemplateScope) => string> = new Map([
  ['clientId', (scope: TemplateScope) => scope.publish.clientId],
  ['username', (scope: TemplateScope) => scope.publish.username ?? ''],
  ['topic', (scope: TemplateScope) => scope.publish.topic],
  ['qos', (scope: TemplateScope) => QOS_TEXT[scope.publish.qos]],
]);

/** Variables every template can use; captures may not take these names (nor `payload`). */
export const BUILTIN_VARIABLES: readonly string[] = [...BUILTINS.keys()];
export const RESERVED_CAPTURE_NAMES: readonly string[] = [...BUILTIN_VARIABLES, 'payload'];

export type TemplatePart = { text: string } | { variable: string };

/** A compiled template, rendered against a scope `S` (an uplink publish by default). */
export interface Template<S = TemplateScope> {
  source: string;
  parts: TemplatePart[];
  /** The rendered text when the template uses no variable. */
  constant: string | undefined;
  render(scope: S): string;
}

/** The captures a rule's templates may use. */
export interface CaptureScope {
  /** Captured by every filter of the rule. */
  everywhere: readonly string[];
  /** Captured by some filters only: using them is an error. */
  somewhere: ReadonlySet<string>;
}

/**
 * Compiles `text with {variables}` once into parts; `{{` and `}}` are literal braces. Without
 * a `scope` (the rule's filters are themselves wrong) only the syntax is checked.
 */
export function compileTemplate(source: string, scope?: CaptureScope): ParseResult<Template> {
  const parsed = parseTemplate(source, (name) => checkVariable(name, scope));
  return parsed.ok ? { ok: true, value: buildTemplate(source, parsed.value, getter) } : parsed;
}

/**
 * The parts of `text with {variables}`; `{{` and `}}` are literal braces. `check` tells what is
 * wrong with a variable name, if anything.
 */
export function parseTemplate(
  source: string,
  check: (name: string) => string | undefined,
): ParseResult<TemplatePart[]> {
  const issues: OffsetIssue[] = [];
  const parts: TemplatePart[] = [];
  let text = '';
  const flushText = (): void => {
    if (text !== '') parts.push({ text });
    text = '';
  };

  let i = 0;
  while (i < source.length) {
    const char = source.charAt(i);
    const nextChar = source.charAt(i + 1);
    if ((char === '{' || char === '}') && nextChar === char) {
      text += char;
      i += 2;
    } else if (char === '}') {
      issues.push({ offset: i, message: 'unmatched "}" (write "}}" for a literal brace)' });
      i += 1;
    } else if (char === '{') {
      const close = source.indexOf('}', i + 1);
      if (close < 0) {
        issues.push({ offset: i, message: 'unclosed "{" (write "{{" for a literal brace)' });
        break;
      }
      const name = source.slice(i + 1, close);
      const problem = check(name);
      if (problem !== undefined) issues.push({ offset: i, message: problem });
      flushText();
      parts.push({ variable: name });
      i = close + 1;
    } else {
      text += char;
      i += 1;
    }
  }
  flushText();
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value: parts };
}

/** A template of checked `parts`; `getter` reads each variable from the scope. */
export function buildTemplate<S>(
  source: string,
  parts: TemplatePart[],
  getter: (variable: string) => (scope: S) => string,
): Template<S> {
  if (parts.every((part) => 'text' in part)) {
    const constant = parts.map((part) => part.text).join('');
    return { source, parts, constant, render: () => constant };
  }
  const getters = parts.map((part) => {
    if ('text' in part) return () => part.text;
    return getter(part.variable);
  });
  const render = (scope: S): string => {
    let out = '';
    for (const get of getters) out += get(scope);
    return out;
  };
  return { source, parts, constant: undefined, render };
}

function checkVariable(name: string, scope: CaptureScope | undefined): string | undefined {
  if (name.startsWith(PAYLOAD_PREFIX)) {
    const path = name.slice(PAYLOAD_PREFIX.length);
    return parseFieldPath(path) === undefined
      ? `invalid payload field "${path}" (${FIELD_PATH_RULE})`
      : undefined;
  }
  if (!VARIABLE_NAME.test(name)) return `invalid variable name "${name}" (${VARIABLE_NAME_RULE})`;
  if (scope === undefined || BUILTIN_VARIABLES.includes(name) || scope.everywhere.includes(name)) {
    return undefined;
  }
  if (scope.somewhere.has(name)) {
    return `variable "${name}" is not captured by every filter of this rule`;
  }
  const known = [...scope.everywhere, ...BUILTIN_VARIABLES];
  const hint = didYouMean(name, known);
  const available = ` (available: ${[...known, 'payload.<field>'].join(', ')})`;
  return `unknown variable "${name}"${hint === '' ? available : hint}`;
}

function getter(variable: string): (scope: TemplateScope) => string {
  const builtin = BUILTINS.get(variable);
  if (builtin !== undefined) return builtin;
  const path = variable.startsWith(PAYLOAD_PREFIX)
    ? parseFieldPath(variable.slice(PAYLOAD_PREFIX.length))
    : undefined;
  if (path !== undefined) return (scope) => jsonText(scope.json.requiredField(path));
  return (scope) => scope.captures[variable] ?? '';
}

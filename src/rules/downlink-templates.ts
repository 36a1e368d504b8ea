import type { DownlinkRecord } from './downlink-types.js';
import type { ParseResult } from './errors.js';
import { FIELD_PATH_RULE, jsonText, parseFieldPath } from './payload-json.js';
import type { FieldPath } from './payload-json.js';
import { headerText, keyText } from './record-value.js';
import type { RecordValue } from './record-value.js';
import { PayloadError } from './errors.js';
import { closest, didYouMean } from './suggest.js';
import { buildTemplate, parseTemplate } from './templates.js';
import type { Template } from './templates.js';

/** What a downlink template is rendered against: the record and its decoded value. */
export interface DownlinkScope {
  record: DownlinkRecord;
  value: RecordValue;
}

export type DownlinkTemplate = Template<DownlinkScope>;

const HEADER_PREFIX = 'header.';
const VALUE_PREFIX = 'value.';

const BUILTINS: ReadonlyMap<string, (scope: DownlinkScope) => string> = new Map([
  ['key', (scope: DownlinkScope) => keyText(scope.record)],
  ['topic', (scope: DownlinkScope) => scope.record.topic],
  ['partition', (scope: DownlinkScope) => String(scope.record.partition)],
  ['offset', (scope: DownlinkScope) => scope.record.offset],
  ['timestamp', (scope: DownlinkScope) => scope.record.timestamp],
]);

const AVAILABLE = [...BUILTINS.keys(), 'header.<name>', 'value.<field>'].join(', ');

/** A record field named in a rule: `header.<name>` or `value.<field>`. */
export type RecordField = { kind: 'header'; name: string } | { kind: 'value'; path: FieldPath };

/** `header.<name>` or `value.<a.b>` → a record field, or what is wrong with it. */
export function parseRecordField(text: string): { field: RecordField } | { error: string } {
  if (text.startsWith(HEADER_PREFIX)) {
    const name = text.slice(HEADER_PREFIX.length);
    return name === ''
      ? { error: 'a header name must not be empty' }
      : { field: { kind: 'header', name } };
  }
  if (text.startsWith(VALUE_PREFIX)) {
    const path = parseFieldPath(text.slice(VALUE_PREFIX.length));
    if (path === undefined) return { error: `invalid value field "${text}" (${FIELD_PATH_RULE})` };
    return { field: { kind: 'value', path } };
  }
  return { error: `expected "header.<name>" or "value.<field>"` };
}

/** A record field's value: a header's last value as text, or a value field; undefined: absent. */
export function readRecordField(field: RecordField, scope: DownlinkScope): unknown {
  return field.kind === 'header'
    ? headerText(scope.record, field.name)
    : scope.value.field(field.path);
}

/**
 * Compiles a downlink template: `{key}`, `{topic}`, `{partition}`, `{offset}`, `{timestamp}`,
 * `{header.<name>}` and `{value.<field>}`; `{{` and `}}` are literal braces.
 */
export function compileDownlinkTemplate(source: string): ParseResult<DownlinkTemplate> {
  const parsed = parseTemplate(source, checkVariable);
  return parsed.ok ? { ok: true, value: buildTemplate(source, parsed.value, getter) } : parsed;
}

function checkVariable(name: string): string | undefined {
  if (BUILTINS.has(name)) return undefined;
  if (name.startsWith(HEADER_PREFIX) || name.startsWith(VALUE_PREFIX)) {
    const parsed = parseRecordField(name);
    return 'error' in parsed ? parsed.error : undefined;
  }
  const dot = name.indexOf('.');
  const prefix = dot < 0 ? undefined : closest(name.slice(0, dot), ['header', 'value']);
  const hint =
    prefix === undefined
      ? didYouMean(name, BUILTINS.keys())
      : ` (did you mean "${prefix}${name.slice(dot)}"?)`;
  return `unknown variable "${name}"${hint === '' ? ` (available: ${AVAILABLE})` : hint}`;
}

function getter(variable: string): (scope: DownlinkScope) => string {
  const builtin = BUILTINS.get(variable);
  if (builtin !== undefined) return builtin;
  const parsed = parseRecordField(variable);
  if ('error' in parsed) throw new Error(`unchecked template variable "${variable}"`);
  const { field } = parsed;
  if (field.kind === 'value') return (scope) => jsonText(scope.value.requiredField(field.path));
  return (scope) => {
    const text = headerText(scope.record, field.name);
    if (text === undefined) throw new PayloadError(`header "${field.name}" is missing`);
    return text;
  };
}

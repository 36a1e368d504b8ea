import type { OffsetIssue, ParseResult } from './errors.js';

/**
 * MQTT topic filters extended with named captures:
 * - a literal level matches itself;
 * - `+` or `{name}` matches exactly one level (the latter captures it as `name`);
 * - `#` or `{name#}` as the last level matches all remaining levels, including none (the latter
 *   captures them joined with `/`, possibly the empty string).
 */
export type FilterLevel =
  | { kind: 'literal'; text: string }
  | { kind: 'one'; capture: string | undefined }
  | { kind: 'rest'; capture: string | undefined };

export interface Capture {
  name: string;
  /** Offset of the `{` in the filter text. */
  offset: number;
}

export interface TopicFilter {
  text: string;
  levels: FilterLevel[];
  captures: Capture[];
}

/** Capture and template variable names. */
export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const VARIABLE_NAME_RULE = 'letters, digits and "_", not starting with a digit';

export function parseFilter(text: string): ParseResult<TopicFilter> {
  const issues: OffsetIssue[] = [];
  // [MQTT-4.7.3-1] a topic filter is at least one character long.
  if (text === '') {
    return { ok: false, issues: [{ offset: 0, message: 'a topic filter must not be empty' }] };
  }
  // [MQTT-4.7.3-2] topic filters must not contain the null character.
  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    issues.push({ offset: nul, message: 'a topic filter must not contain the null character' });
  }

  const levels: FilterLevel[] = [];
  const captures: Capture[] = [];
  const texts = text.split('/');
  let offset = 0;
  texts.forEach((level, index) => {
    const last = index === texts.length - 1;
    const fail = (message: string): void => {
      issues.push({ offset, message });
    };
    if (level === '#' || level === '+') {
      // [MQTT-4.7.1-1] the multi-level wildcard must be the last level.
      if (level === '#' && !last) fail('"#" is only allowed as the last level');
      levels.push({ kind: level === '#' ? 'rest' : 'one', capture: undefined });
    } else if (level.length >= 2 && level.startsWith('{') && level.endsWith('}')) {
      const rest = level.endsWith('#}');
      const name = level.slice(1, rest ? -2 : -1);
      if (!VARIABLE_NAME.test(name)) {
        fail(`invalid capture name "${name}" (${VARIABLE_NAME_RULE})`);
      } else if (captures.some((capture) => capture.name === name)) {
        fail(`capture "${name}" is already used in this filter`);
      } else {
        captures.push({ name, offset });
      }
      if (rest && !last) fail(`capture "${level}" is only allowed as the last level`);
      levels.push({ kind: rest ? 'rest' : 'one', capture: name });
    } else if (level.includes('{') && level.includes('}')) {
      fail(`a level may not mix text and a capture ("${level}"); give the capture its own level`);
    } else if (level.includes('{') || level.includes('}')) {
      fail(`unbalanced brace in level "${level}"`);
    } else if (level.includes('#') || level.includes('+')) {
      // [MQTT-4.7.1-1], [MQTT-4.7.1-2] wildcards occupy an entire level.
      fail(`"${level.includes('#') ? '#' : '+'}" must occupy a whole level ("${level}")`);
    } else {
      levels.push({ kind: 'literal', text: level });
    }
    offset += level.length + 1;
  });

  return issues.length > 0
    ? { ok: false, issues }
    : { ok: true, value: { text, levels, captures } };
}

import { describe, expect, it } from 'vitest';
import { compileTemplate } from '../../../src/rules/templates.js';
import type { CaptureScope, Template } from '../../../src/rules/templates.js';
import { publish, scopeOf } from './fixtures.js';

const scope: CaptureScope = { everywhere: ['deviceId', 'rest'], somewhere: new Set(['site']) };

function compile(source: string): Template {
  const compiled = compileTemplate(source, scope);
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.issues));
  return compiled.value;
}

function issues(source: string) {
  const compiled = compileTemplate(source, scope);
  return compiled.ok ? [] : compiled.issues;
}

const captures = { deviceId: 'd1', rest: 'a/b' };

describe('compileTemplate', () => {
  it('compiles text without variables to a constant', () => {
    const template = compile('iot.telemetry');
    expect(template.constant).toBe('iot.telemetry');
    expect(template.render(scopeOf(publish(), captures))).toBe('iot.telemetry');
    expect(compile('').constant).toBe('');
  });

  it('substitutes captures', () => {
    const template = compile('dev-{deviceId}/{rest}!');
    expect(template.constant).toBeUndefined();
    expect(template.parts).toEqual([
      { text: 'dev-' },
      { variable: 'deviceId' },
      { text: '/' },
      { variable: 'rest' },
      { text: '!' },
    ]);
    expect(template.render(scopeOf(publish(), captures))).toBe('dev-d1/a/b!');
  });

  it('substitutes the built-in variables', () => {
    const template = compile('{clientId}|{username}|{topic}|{qos}');
    const scoped = scopeOf(publish({ topic: 'x/y', qos: 2, username: 'alice' }), captures);
    expect(template.render(scoped)).toBe('client-1|alice|x/y|2');
    expect(template.render(scopeOf(publish({ username: undefined, qos: 0 }), captures))).toBe(
      'client-1||devices/d1/telemetry|0',
    );
  });

  it('reads "{{" and "}}" as literal braces', () => {
    expect(compile('{{deviceId}}').constant).toBe('{deviceId}');
    expect(compile('{{{deviceId}}}').render(scopeOf(publish(), captures))).toBe('{d1}');
    expect(compile('a}}b{{c').constant).toBe('a}b{c');
  });

  it('reports an unknown variable with a suggestion', () => {
    expect(issues('x.{devicId}')).toEqual([
      { offset: 2, message: 'unknown variable "devicId" (did you mean "deviceId"?)' },
    ]);
    expect(issues('{clientid}')).toEqual([
      { offset: 0, message: 'unknown variable "clientid" (did you mean "clientId"?)' },
    ]);
  });

  it('lists the available variables when nothing is close', () => {
    expect(issues('{serial}')).toEqual([
      {
        offset: 0,
        message:
          'unknown variable "serial" (available: deviceId, rest, clientId, username, topic, qos, payload.<field>)',
      },
    ]);
  });

  it('rejects a capture missing from some filters of the rule', () => {
    expect(issues('{site}')).toEqual([
      { offset: 0, message: 'variable "site" is not captured by every filter of this rule' },
    ]);
  });

  it('reports syntax errors with their offsets', () => {
    expect(issues('a{')).toEqual([
      { offset: 1, message: 'unclosed "{" (write "{{" for a literal brace)' },
    ]);
    expect(issues('a}b')).toEqual([
      { offset: 1, message: 'unmatched "}" (write "}}" for a literal brace)' },
    ]);
    expect(issues('{}')).toEqual([
      {
        offset: 0,
        message: 'invalid variable name "" (letters, digits and "_", not starting with a digit)',
      },
    ]);
    expect(issues('{rest#}')).toEqual([
      {
        offset: 0,
        message:
          'invalid variable name "rest#" (letters, digits and "_", not starting with a digit)',
      },
    ]);
  });

  it('reports every problem of a template', () => {
    expect(issues('{a}-{deviceId}-}-{b')).toEqual([
      expect.objectContaining({ offset: 0 }),
      expect.objectContaining({ offset: 15 }),
      expect.objectContaining({ offset: 17 }),
    ]);
  });

  it('checks only the syntax without a capture scope', () => {
    expect(compileTemplate('{anything}').ok).toBe(true);
    expect(compileTemplate('{anything').ok).toBe(false);
  });
});

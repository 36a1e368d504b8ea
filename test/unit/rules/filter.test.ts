import { describe, expect, it } from 'vitest';
import { parseFilter } from '../../../src/rules/filter.js';

function levels(text: string) {
  const parsed = parseFilter(text);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.value.levels;
}

function issues(text: string) {
  const parsed = parseFilter(text);
  return parsed.ok ? [] : parsed.issues;
}

describe('parseFilter', () => {
  it('parses literal levels and MQTT wildcards', () => {
    expect(levels('a/+/#')).toEqual([
      { kind: 'literal', text: 'a' },
      { kind: 'one', capture: undefined },
      { kind: 'rest', capture: undefined },
    ]);
  });

  it('parses named captures with their offsets', () => {
    const parsed = parseFilter('devices/{deviceId}/x/{rest#}');
    expect(parsed.ok && parsed.value.levels).toEqual([
      { kind: 'literal', text: 'devices' },
      { kind: 'one', capture: 'deviceId' },
      { kind: 'literal', text: 'x' },
      { kind: 'rest', capture: 'rest' },
    ]);
    expect(parsed.ok && parsed.value.captures).toEqual([
      { name: 'deviceId', offset: 8 },
      { name: 'rest', offset: 21 },
    ]);
  });

  it('keeps empty levels', () => {
    expect(levels('a//b')).toEqual([
      { kind: 'literal', text: 'a' },
      { kind: 'literal', text: '' },
      { kind: 'literal', text: 'b' },
    ]);
    expect(levels('/')).toEqual([
      { kind: 'literal', text: '' },
      { kind: 'literal', text: '' },
    ]);
  });

  it('accepts $ topics and a lone wildcard', () => {
    expect(levels('$SYS/#')).toHaveLength(2);
    expect(levels('#')).toEqual([{ kind: 'rest', capture: undefined }]);
    expect(levels('{all#}')).toEqual([{ kind: 'rest', capture: 'all' }]);
  });

  it.each([
    ['', 0, 'a topic filter must not be empty'],
    ['a/\u0000', 2, 'a topic filter must not contain the null character'],
    ['a/#/b', 2, '"#" is only allowed as the last level'],
    ['a/b#', 2, '"#" must occupy a whole level ("b#")'],
    ['a/+b', 2, '"+" must occupy a whole level ("+b")'],
    [
      'x/dev-{id}',
      2,
      'a level may not mix text and a capture ("dev-{id}"); give the capture its own level',
    ],
    [
      'x/{id}s',
      2,
      'a level may not mix text and a capture ("{id}s"); give the capture its own level',
    ],
    ['a/{id', 2, 'unbalanced brace in level "{id"'],
    ['a/id}', 2, 'unbalanced brace in level "id}"'],
    ['a/{1x}', 2, 'invalid capture name "1x" (letters, digits and "_", not starting with a digit)'],
    ['a/{}', 2, 'invalid capture name "" (letters, digits and "_", not starting with a digit)'],
    [
      'a/{x-y}',
      2,
      'invalid capture name "x-y" (letters, digits and "_", not starting with a digit)',
    ],
    ['{id}/{id}', 5, 'capture "id" is already used in this filter'],
    ['a/{rest#}/b', 2, 'capture "{rest#}" is only allowed as the last level'],
  ])('rejects %j at offset %i: %s', (text, offset, message) => {
    expect(issues(text)).toEqual([{ offset, message }]);
  });

  it('reports every problem of a filter', () => {
    expect(issues('#/a+/{1}')).toEqual([
      { offset: 0, message: '"#" is only allowed as the last level' },
      { offset: 2, message: '"+" must occupy a whole level ("a+")' },
      {
        offset: 5,
        message: 'invalid capture name "1" (letters, digits and "_", not starting with a digit)',
      },
    ]);
  });
});

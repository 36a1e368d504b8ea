import { describe, expect, it } from 'vitest';
import { parseFilter } from '../../../src/rules/filter.js';
import { TopicTrie } from '../../../src/rules/topic-trie.js';

/** A trie whose values are the filters' own texts. */
function trie(...filters: string[]): TopicTrie<string> {
  const result = new TopicTrie<string>();
  for (const text of filters) {
    const parsed = parseFilter(text);
    if (!parsed.ok) throw new Error(`bad filter ${text}`);
    result.insert(parsed.value, text);
  }
  return result;
}

function matching(filters: TopicTrie<string>, topic: string): string[] {
  return filters.match(topic).map((match) => match.value);
}

describe('TopicTrie', () => {
  it('matches literal filters exactly', () => {
    const filters = trie('a/b', 'a/b/c', 'a');
    expect(matching(filters, 'a/b')).toEqual(['a/b']);
    expect(matching(filters, 'a')).toEqual(['a']);
    expect(matching(filters, 'a/c')).toEqual([]);
    expect(matching(filters, 'A/b')).toEqual([]);
  });

  it('matches "+" against exactly one level, possibly empty', () => {
    const filters = trie('a/+', '+/+');
    expect(matching(filters, 'a/x')).toEqual(['a/+', '+/+']);
    expect(matching(filters, 'a/')).toEqual(['a/+', '+/+']);
    expect(matching(filters, 'a')).toEqual([]);
    expect(matching(filters, 'a/x/y')).toEqual([]);
  });

  it('matches "#" against any remaining levels, including none', () => {
    const filters = trie('a/#', '#');
    expect(matching(filters, 'a')).toEqual(['a/#', '#']);
    expect(matching(filters, 'a/b')).toEqual(['a/#', '#']);
    expect(matching(filters, 'a/b/c/d')).toEqual(['a/#', '#']);
    expect(matching(filters, 'b')).toEqual(['#']);
    expect(matching(filters, 'ab')).toEqual(['#']);
  });

  it('captures named levels', () => {
    const [match] = trie('devices/{deviceId}/events/{eventType}').match('devices/d1/events/door');
    expect(match?.captures).toEqual({ deviceId: 'd1', eventType: 'door' });
  });

  it('captures the rest of the topic, possibly empty, with {name#}', () => {
    const filters = trie('devices/{id}/telemetry/{rest#}');
    expect(filters.match('devices/d1/telemetry/a/b/c')[0]?.captures).toEqual({
      id: 'd1',
      rest: 'a/b/c',
    });
    expect(filters.match('devices/d1/telemetry')[0]?.captures).toEqual({ id: 'd1', rest: '' });
    expect(filters.match('devices/d1/telemetry/')[0]?.captures).toEqual({ id: 'd1', rest: '' });
    expect(trie('{all#}').match('x//y')[0]?.captures).toEqual({ all: 'x//y' });
  });

  it("keeps each filter's own captures when several filters match", () => {
    const filters = trie('{a}/x', '{b}/{c}');
    expect(filters.match('1/x').map((m) => m.captures)).toEqual([{ a: '1' }, { b: '1', c: 'x' }]);
  });

  it('does not let a leading wildcard match a topic starting with "$" [MQTT-4.7.2-1]', () => {
    const filters = trie('#', '+/info', '{first}/info', '{all#}', '$SYS/#', '$SYS/+');
    expect(matching(filters, '$SYS/info')).toEqual(['$SYS/#', '$SYS/+']);
    expect(matching(filters, 'sys/info')).toEqual(['#', '+/info', '{first}/info', '{all#}']);
  });

  it('lets wildcards below the first level match "$" levels', () => {
    expect(matching(trie('a/+', 'a/#'), 'a/$x')).toEqual(['a/+', 'a/#']);
  });

  it('treats empty levels as levels', () => {
    const filters = trie('a//b', '+/x', '/');
    expect(matching(filters, 'a//b')).toEqual(['a//b']);
    expect(matching(filters, 'a/b')).toEqual([]);
    expect(matching(filters, '/x')).toEqual(['+/x']);
    expect(matching(filters, '/')).toEqual(['/']);
  });

  it('returns matches in insertion order whatever branch found them', () => {
    const filters = trie('#', 'a/+/c', 'a/b/c', '+/b/#', 'a/b/c/#');
    expect(matching(filters, 'a/b/c')).toEqual(['#', 'a/+/c', 'a/b/c', '+/b/#', 'a/b/c/#']);
  });

  it('returns the same filter twice when inserted twice', () => {
    expect(matching(trie('a/+', 'a/+'), 'a/b')).toEqual(['a/+', 'a/+']);
  });

  it('routes correctly among 10,000 filters', () => {
    const texts: string[] = [];
    for (let i = 0; i < 5000; i++) texts.push(`site${i}/+/temp`, `site${i}/{device}/#`);
    const filters = trie(...texts);
    for (const i of [0, 1234, 4999]) {
      const matches = filters.match(`site${i}/dev-7/temp`);
      expect(matches.map((m) => m.value)).toEqual([`site${i}/+/temp`, `site${i}/{device}/#`]);
      expect(matches[1]?.captures).toEqual({ device: 'dev-7' });
    }
    expect(matching(filters, 'site5000/dev-7/temp')).toEqual([]);
    expect(matching(filters, 'site1/dev-7')).toEqual(['site1/{device}/#']);
  });
});

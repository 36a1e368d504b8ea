import { describe, expect, it } from 'vitest';
import { TopicPatternSet } from '../../../src/auth/topic-patterns.js';

function patterns(...list: string[]): TopicPatternSet {
  const set = new TopicPatternSet();
  for (const pattern of list) set.add(pattern);
  return set;
}

describe('TopicPatternSet.matches (publish)', () => {
  it.each([
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
    ['a/b', 'a/b/c', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a', false],
    ['a/+', 'a/', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab', false],
    ['+/b/#', 'x/b', true],
    ['#', 'anything/at/all', true],
    ['#', '/leading/slash', true],
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['$SYS/+', '$SYS/x', true],
    ['a/+/$x', 'a/b/$x', true],
    ['a/#', 'a/$x', true],
  ])('%s matches %s: %s', (pattern, topic, expected) => {
    expect(patterns(pattern).matches(topic)).toBe(expected);
  });

  it('matches when any pattern does, backtracking between literal and +', () => {
    const set = patterns('a/b/c', 'a/+/d', 'x/#');
    expect(set.matches('a/b/d')).toBe(true);
    expect(set.matches('a/b/c')).toBe(true);
    expect(set.matches('a/z/c')).toBe(false);
    expect(set.matches('x')).toBe(true);
  });

  it('matches nothing when empty', () => {
    expect(patterns().matches('a')).toBe(false);
  });
});

describe('TopicPatternSet.covers (subscribe)', () => {
  it.each([
    // the brief's examples
    ['devices/+/cmd/#', 'devices/a/cmd/x', true],
    ['devices/+/cmd/#', 'devices/+/cmd/#', true],
    ['devices/+/cmd/#', 'devices/+/cmd', true],
    ['devices/+/cmd/#', 'devices/#', false],
    ['devices/+/cmd/#', 'devices/+/+/#', false],
    ['a/#', 'a', true],
    ['a/#', 'a/#', true],
    ['a/#', 'a/+/+', true],
    ['a/#', '#', false],
    // + and literal levels
    ['a/+', 'a/b', true],
    ['a/+', 'a/+', true],
    ['a/+', 'a/#', false],
    ['a/+', 'a/+/b', false],
    ['a/b', 'a/+', false],
    ['+', '+', true],
    ['+', '#', false],
    ['+/#', '#', true],
    ['#', '#', true],
    ['#', '+/+/x', true],
    // $ topics: a leading wildcard matches none, on either side
    ['#', '$SYS/x', false],
    ['#', '$SYS/#', false],
    ['+/#', '$SYS/broker', false],
    ['$SYS/#', '$SYS/x', true],
    ['$SYS/#', '$SYS/#', true],
    ['$SYS/#', '#', false],
    ['$SYS/+', '$SYS/+', true],
  ])('pattern %s allows subscribing to %s: %s', (pattern, filter, expected) => {
    expect(patterns(pattern).covers(filter)).toBe(expected);
  });

  it('combines patterns: together they may cover what none covers alone', () => {
    expect(patterns('a', 'a/+/#').covers('a/#')).toBe(true);
    expect(patterns('a/+/#').covers('a/#')).toBe(false); // not a itself
    expect(patterns('a', 'a/+').covers('a/#')).toBe(false); // not a/b/c
    expect(patterns('+', '+/#').covers('#')).toBe(true);
    expect(patterns('+/x', 'a/+').covers('a/x')).toBe(true);
    expect(patterns('+/x', 'a/+').covers('+/y')).toBe(false);
  });
});

describe('TopicPatternSet against a brute-force reference', () => {
  /** MQTT filter matching, written plainly. */
  function filterMatches(filter: string, topic: string): boolean {
    const f = filter.split('/');
    const t = topic.split('/');
    if ((f[0] === '+' || f[0] === '#') && t[0]?.startsWith('$')) return false;
    for (let index = 0; index < f.length; index++) {
      if (f[index] === '#') return true;
      if (index >= t.length || (f[index] !== '+' && f[index] !== t[index])) return false;
    }
    return f.length === t.length;
  }

  const LEVELS = ['a', 'b', '$x', '+', '#'];
  /** Every valid filter of up to `depth` levels over LEVELS. */
  function filters(depth: number): string[] {
    if (depth === 0) return [];
    const shorter = filters(depth - 1);
    const all = LEVELS.map((level) => [level]);
    for (const filter of shorter) {
      if (filter.endsWith('#')) continue;
      for (const level of LEVELS) all.push([...filter.split('/'), level]);
    }
    return [...new Set([...shorter, ...all.map((levels) => levels.join('/'))])].filter(
      (filter) => !filter.slice(0, -1).includes('#') && !/.\$x/.test(filter.replace(/^\$x/, '')),
    );
  }
  /** Topics up to `depth` levels, with a level no pattern names ("z") and an empty one. */
  function topics(depth: number): string[] {
    let current = ['a', 'b', '$x', 'z', ''];
    const all = [...current];
    for (let level = 1; level < depth; level++) {
      current = current.flatMap((topic) => ['a', 'b', 'z', ''].map((next) => `${topic}/${next}`));
      all.push(...current);
    }
    return all;
  }

  const allFilters = filters(3);
  const allTopics = topics(4);
  let seed = 42;
  const random = (below: number): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % below;
  };
  const pick = (list: string[]): string => list[random(list.length)] ?? '#';

  it('agrees on publish and subscribe for random pattern sets', () => {
    const disagreements: string[] = [];
    for (let round = 0; round < 150; round++) {
      const list = Array.from({ length: 1 + random(3) }, () => pick(allFilters));
      const set = patterns(...list);
      for (const topic of allTopics) {
        const expected = list.some((pattern) => filterMatches(pattern, topic));
        if (set.matches(topic) !== expected) disagreements.push(`${list.join(' ')} ∋ ${topic}`);
      }
      for (let index = 0; index < 20; index++) {
        const filter = pick(allFilters);
        const expected = allTopics
          .filter((topic) => filterMatches(filter, topic))
          .every((topic) => list.some((pattern) => filterMatches(pattern, topic)));
        if (set.covers(filter) !== expected) disagreements.push(`${list.join(' ')} ⊇ ${filter}`);
      }
    }
    expect(disagreements).toEqual([]);
  });
});

describe('TopicPatternSet on topics of many levels', () => {
  // 32,767 levels: the most a 65,535-byte topic can have. Recursion per level overflowed the stack.
  const deep = (level: string) => Array.from({ length: 32_767 }, () => level).join('/');

  it('judges a filter and a topic of 32,767 levels without overflowing the stack', () => {
    const set = patterns('a/b', 'x/+/y', deep('+'));
    expect(set.covers(deep('+'))).toBe(true);
    expect(set.covers(`${deep('+')}/#`)).toBe(false);
    expect(set.covers(deep('q'))).toBe(true);
    expect(set.matches(deep('q'))).toBe(true);
    expect(set.matches(`${deep('q')}/r`)).toBe(false);
    expect(patterns('a/b').covers(deep('+'))).toBe(false);
    expect(patterns('a/b').matches(deep('a'))).toBe(false);
  });
});

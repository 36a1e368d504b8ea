import { describe, expect, it } from 'vitest';
import { parseTopicFilter, TopicTree, type SharedMatch } from '../../../src/mqtt/topic-tree.js';

/** Client ids of the non-shared matches, in the order returned. */
function clients<T>(tree: TopicTree<T>, topic: string): string[] {
  return tree.match(topic).subscribers.map((match) => match.clientId);
}

/** Shared matches as "group|filter: member,member", sorted. */
function groups<T>(tree: TopicTree<T>, topic: string): string[] {
  return tree
    .match(topic)
    .shared.map(
      (group) =>
        `${group.group}|${group.filter}: ${group.members.map((m) => m.clientId).join(',')}`,
    )
    .sort();
}

/** A tree where client "c" subscribes to each filter (the value is the filter). */
function treeWith(...filters: string[]): TopicTree<string> {
  const tree = new TopicTree<string>();
  for (const filter of filters) tree.subscribe('c', filter, filter);
  return tree;
}

/** Whether the single-filter tree matches `topic`. */
function matches(filter: string, topic: string): boolean {
  const result = treeWith(filter).match(topic);
  return result.subscribers.length + result.shared.length > 0;
}

/** An independent, obviously correct matcher to check the trie against. */
function referenceMatches(filter: string, topic: string): boolean {
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  if (topic.startsWith('$') && (filterLevels[0] === '+' || filterLevels[0] === '#')) return false;
  for (const [index, level] of filterLevels.entries()) {
    if (level === '#') return true;
    if (index >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[index]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('parseTopicFilter', () => {
  it.each([
    'a',
    'a/b/c',
    '+',
    '#',
    'a/+/c',
    'a/#',
    '+/+/#',
    '/',
    '//',
    'a//b',
    '/a',
    'a/',
    '$SYS/#',
    'sport/tennis/player 1',
    'température/°C/😀',
    // These do not start with "$share/" or "$queue/": ordinary filters.
    '$share',
    '$queue',
    '$SHARE/g/a',
    '$Queue/a',
    'a/$share/g/b',
  ])('accepts the ordinary filter %j', (text) => {
    expect(parseTopicFilter(text)).toEqual({ filter: text, shareGroup: undefined });
  });

  it.each([
    ['', 'empty topic filter'],
    ['a/\u0000/b', 'null character in topic filter'],
    ['\u0000', 'null character in topic filter'],
    ['sport+', '"+" does not occupy a whole level of topic filter "sport+"'],
    ['+sport', '"+" does not occupy a whole level of topic filter "+sport"'],
    ['a/b+/c', '"+" does not occupy a whole level of topic filter "a/b+/c"'],
    ['++', '"+" does not occupy a whole level of topic filter "++"'],
    ['sport#', '"#" does not occupy a whole level of topic filter "sport#"'],
    ['a/#b', '"#" does not occupy a whole level of topic filter "a/#b"'],
    ['##', '"#" does not occupy a whole level of topic filter "##"'],
    ['+#', '"#" does not occupy a whole level of topic filter "+#"'],
    ['#/a', '"#" is not the last level of topic filter "#/a"'],
    ['sport/#/ranking', '"#" is not the last level of topic filter "sport/#/ranking"'],
    ['a/#/', '"#" is not the last level of topic filter "a/#/"'],
  ])('rejects %j: %s', (text, problem) => {
    expect(parseTopicFilter(text)).toEqual({ problem });
  });

  it('limits the UTF-8 encoding to 65,535 bytes [MQTT-4.7.3-3]', () => {
    const tooLong = { problem: 'topic filter longer than 65535 bytes' };
    expect(parseTopicFilter('a'.repeat(65_535))).toHaveProperty('filter');
    expect(parseTopicFilter('a'.repeat(65_536))).toEqual(tooLong);
    // 2-byte characters
    expect(parseTopicFilter('é'.repeat(32_767) + 'a')).toHaveProperty('filter');
    expect(parseTopicFilter('é'.repeat(32_768))).toEqual(tooLong);
    // 3-byte characters: 21,845 × 3 = 65,535
    expect(parseTopicFilter('€'.repeat(21_845))).toHaveProperty('filter');
    expect(parseTopicFilter('€'.repeat(21_845) + 'a')).toEqual(tooLong);
    // 4-byte characters (surrogate pairs): 16,383 × 4 + 3 = 65,535
    expect(parseTopicFilter('😀'.repeat(16_383) + 'abc')).toHaveProperty('filter');
    expect(parseTopicFilter('😀'.repeat(16_384))).toEqual(tooLong);
    // the limit covers a share prefix too
    expect(parseTopicFilter('$share/g/' + 'a'.repeat(65_526))).toHaveProperty('filter');
    expect(parseTopicFilter('$share/g/' + 'a'.repeat(65_527))).toEqual(tooLong);
  });

  it.each([
    ['$share/g/a/b', 'g', 'a/b'],
    ['$share/group-1/#', 'group-1', '#'],
    ['$share/g/+/x', 'g', '+/x'],
    ['$share/g//a', 'g', '/a'],
    ['$share/g//', 'g', '/'],
    ['$share/g/$SYS/#', 'g', '$SYS/#'],
    ['$share/g/$share/h/a', 'g', '$share/h/a'],
    ['$share/$g/a', '$g', 'a'],
    ['$queue/a/b', '$queue', 'a/b'],
    ['$queue/#', '$queue', '#'],
    ['$queue//', '$queue', '/'],
    // EMQX: $queue/{filter} is $share/$queue/{filter}
    ['$share/$queue/a/b', '$queue', 'a/b'],
  ])('parses the shared subscription %j', (text, shareGroup, filter) => {
    expect(parseTopicFilter(text)).toEqual({ filter, shareGroup });
  });

  it.each([
    ['$share/', 'empty share name in "$share/"'],
    ['$share//a', 'empty share name in "$share//a"'],
    ['$share/g', 'no topic filter after the share name in "$share/g"'],
    ['$share/g/', 'no topic filter after the share name in "$share/g/"'],
    ['$share/g+/a', 'wildcard in share name "g+"'],
    ['$share/+/a', 'wildcard in share name "+"'],
    ['$share/#/a', 'wildcard in share name "#"'],
    ['$share/#', 'wildcard in share name "#"'],
    ['$share/g/a+', '"+" does not occupy a whole level of topic filter "$share/g/a+"'],
    ['$share/g/#/a', '"#" is not the last level of topic filter "$share/g/#/a"'],
    ['$share/g/a\u0000', 'null character in topic filter'],
    ['$queue/', 'no topic filter after "$queue/" in "$queue/"'],
    ['$queue/a#', '"#" does not occupy a whole level of topic filter "$queue/a#"'],
  ])('rejects the shared subscription %j: %s', (text, problem) => {
    expect(parseTopicFilter(text)).toEqual({ problem });
  });
});

describe('TopicTree matching', () => {
  it('matches a filter without wildcards exactly and case-sensitively', () => {
    expect(matches('sport/tennis', 'sport/tennis')).toBe(true);
    for (const topic of [
      'sport',
      'sport/tennis/player1',
      'sport/golf',
      'Sport/Tennis',
      'sport/tennis/',
    ]) {
      expect(matches('sport/tennis', topic), topic).toBe(false);
    }
  });

  it('does not normalise levels [MQTT-4.7.3-4]', () => {
    expect(matches('a/b/', 'a/b/')).toBe(true);
    expect(matches('a/b/', 'a/b')).toBe(false);
    expect(matches('a/b', 'a/b/')).toBe(false);
    expect(matches('a/b', 'a//b')).toBe(false);
  });

  it('treats empty levels as ordinary levels', () => {
    expect(matches('a//b', 'a//b')).toBe(true);
    expect(matches('a//b', 'a/b')).toBe(false);
    expect(matches('/a', '/a')).toBe(true);
    expect(matches('/a', 'a')).toBe(false);
    expect(matches('/', '/')).toBe(true);
    expect(matches('/', '//')).toBe(false);
    expect(matches('//', '//')).toBe(true);
    expect(matches('a/+/b', 'a//b')).toBe(true);
    expect(matches('/+', '/')).toBe(true);
    expect(matches('+', '/')).toBe(false);
    expect(matches('+/+', '/')).toBe(true);
    expect(matches('/#', '/a/b')).toBe(true);
    expect(matches('/#', 'a')).toBe(false);
  });

  it('matches "+" against exactly one level [MQTT-4.7.1-3]', () => {
    expect(matches('sport/tennis/+', 'sport/tennis/player1')).toBe(true);
    expect(matches('sport/tennis/+', 'sport/tennis/')).toBe(true);
    expect(matches('sport/tennis/+', 'sport/tennis')).toBe(false);
    expect(matches('sport/tennis/+', 'sport/tennis/player1/ranking')).toBe(false);
    expect(matches('sport/+', 'sport/')).toBe(true);
    expect(matches('sport/+', 'sport')).toBe(false);
    expect(matches('+', 'sport')).toBe(true);
    expect(matches('+', 'sport/tennis')).toBe(false);
    expect(matches('+/+', 'a/b')).toBe(true);
    expect(matches('+/tennis/#', 'sport/tennis/player1')).toBe(true);
    expect(matches('a/+/c', 'a/b/c')).toBe(true);
    expect(matches('a/+/c', 'a/b/d')).toBe(false);
    expect(matches('a/+/c', 'a/c')).toBe(false);
  });

  it('matches "#" against the parent level and any number of child levels [MQTT-4.7.1-2]', () => {
    for (const topic of [
      'sport',
      'sport/',
      'sport/tennis',
      'sport/tennis/player1',
      'sport/tennis/player1/ranking',
      'sport//',
    ]) {
      expect(matches('sport/#', topic), topic).toBe(true);
    }
    for (const topic of ['sports', 'sportx/tennis', 'tennis/sport', '/sport']) {
      expect(matches('sport/#', topic), topic).toBe(false);
    }
    for (const topic of ['a', '/', 'a/b/c', '//']) {
      expect(matches('#', topic), topic).toBe(true);
    }
    expect(matches('a/+/#', 'a/b')).toBe(true);
    expect(matches('a/+/#', 'a/b/c/d')).toBe(true);
    expect(matches('a/+/#', 'a')).toBe(false);
    expect(matches('+/#', 'a')).toBe(true);
  });

  it('keeps leading wildcards away from topics starting with "$" [MQTT-4.7.2-1]', () => {
    for (const filter of [
      '#',
      '+',
      '+/#',
      '+/+',
      '+/monitor/Clients',
      '$share/g/#',
      '$queue/+/x',
    ]) {
      for (const topic of ['$SYS', '$SYS/monitor/Clients', '$SYS/x', '$', '$/x']) {
        expect(matches(filter, topic), `${filter} vs ${topic}`).toBe(false);
      }
    }
    expect(matches('$SYS/#', '$SYS/x')).toBe(true);
    expect(matches('$SYS/#', '$SYS')).toBe(true);
    expect(matches('$SYS/#', '$SYS/monitor/Clients')).toBe(true);
    expect(matches('$SYS/+', '$SYS/x')).toBe(true);
    expect(matches('$SYS/+/Clients', '$SYS/monitor/Clients')).toBe(true);
    expect(matches('$SYS/monitor/Clients', '$SYS/monitor/Clients')).toBe(true);
    expect(matches('$', '$')).toBe(true);
    expect(matches('$share/g/$SYS/#', '$SYS/x')).toBe(true);
    expect(matches('$queue/$SYS/+', '$SYS/x')).toBe(true);
    // only the first level counts
    expect(matches('+/$x', 'a/$x')).toBe(true);
    expect(matches('a/#', 'a/$x')).toBe(true);
    expect(matches('#', 'a$')).toBe(true);
  });

  it('matches a topic that merely looks like a shared subscription with an ordinary filter', () => {
    expect(matches('$share', '$share')).toBe(true);
    expect(matches('$share/g/a', 'a')).toBe(true);
    expect(matches('$share/g/a', '$share/g/a')).toBe(false);
  });

  it('returns every matching subscription once, in subscription order within a filter', () => {
    const tree = new TopicTree<string>();
    tree.subscribe('c3', 'a/b', 'c3 a/b');
    tree.subscribe('c1', 'a/b', 'c1 a/b');
    tree.subscribe('c2', 'a/b', 'c2 a/b');
    tree.subscribe('c1', 'x/y', 'c1 x/y');
    expect(tree.match('a/b').subscribers).toEqual([
      { clientId: 'c3', value: 'c3 a/b' },
      { clientId: 'c1', value: 'c1 a/b' },
      { clientId: 'c2', value: 'c2 a/b' },
    ]);
    expect(tree.match('a/b').shared).toEqual([]);
    expect(tree.match('nothing/here')).toEqual({ subscribers: [], shared: [] });
  });

  it('returns overlapping subscriptions of one client as separate matches', () => {
    const tree = treeWith('a/+', 'a/#', 'a/b', '#', '+/b', '+/+', 'a/b/#', 'a/c');
    const values = tree.match('a/b').subscribers.map((match) => match.value);
    expect(values.sort()).toEqual(['#', '+/+', '+/b', 'a/#', 'a/+', 'a/b', 'a/b/#']);
    expect(new Set(clients(tree, 'a/b'))).toEqual(new Set(['c']));
  });

  it('returns the same order every time', () => {
    const tree = new TopicTree<number>();
    ['#', 'a/#', 'a/+', 'a/b', '+/b', '+/+'].forEach((filter, index) => {
      tree.subscribe(`c${index}`, filter, index);
    });
    const first = clients(tree, 'a/b');
    expect(first).toHaveLength(6);
    expect(clients(tree, 'a/b')).toEqual(first);
  });

  it('matches nothing for an empty topic name [MQTT-4.7.3-1]', () => {
    expect(treeWith('#', '+').match('')).toEqual({ subscribers: [], shared: [] });
  });

  it('returns results that later changes do not affect and that cannot change the tree', () => {
    const tree = new TopicTree<{ qos: number }>();
    tree.subscribe('c1', 'a', { qos: 1 });
    tree.subscribe('c2', '$share/g/a', { qos: 2 });
    const before = tree.match('a');
    tree.subscribe('c1', 'a', { qos: 0 });
    tree.unsubscribe('c2', '$share/g/a');
    tree.subscribe('c3', 'a', { qos: 2 });
    expect(before.subscribers).toEqual([{ clientId: 'c1', value: { qos: 1 } }]);
    expect(before.shared).toEqual([
      {
        group: 'g',
        filter: 'a',
        members: [{ clientId: 'c2', value: { qos: 2 } }],
        cursor: { turn: 0 },
      },
    ]);

    const after = tree.match('a');
    expect(Object.isFrozen(after.subscribers[0])).toBe(true);
    after.subscribers.length = 0;
    expect(clients(tree, 'a')).toEqual(['c1', 'c3']);
  });

  it('handles topics and filters with tens of thousands of levels without recursion', () => {
    const tree = new TopicTree<string>();
    const deep = Array.from({ length: 30_000 }, (_, index) => (index % 2 === 0 ? 'x' : '')).join(
      '/',
    );
    tree.subscribe('c1', deep, 'exact');
    tree.subscribe('c2', deep.replace(/^x/, '+'), 'plus');
    tree.subscribe('c3', `${deep}/#`, 'hash');
    tree.subscribe('c4', '#', 'all');
    expect(clients(tree, deep).sort()).toEqual(['c1', 'c2', 'c3', 'c4']);
    expect(clients(tree, `${deep}/more`).sort()).toEqual(['c3', 'c4']);
    expect(clients(tree, `${deep}x`).sort()).toEqual(['c4']);
    const slashes = '/'.repeat(60_000);
    expect(clients(tree, slashes)).toEqual(['c4']);
    for (const client of ['c1', 'c2', 'c3', 'c4']) tree.unsubscribeAll(client);
    expect(tree.nodeCount()).toBe(1);
  });
});

describe('TopicTree shared subscriptions', () => {
  it('returns a group with all its members, and not as ordinary subscribers', () => {
    const tree = new TopicTree<number>();
    tree.subscribe('c1', '$share/workers/jobs/+', 1);
    tree.subscribe('c2', '$share/workers/jobs/+', 2);
    tree.subscribe('c3', '$share/workers/jobs/+', 3);
    const result = tree.match('jobs/42');
    expect(result.subscribers).toEqual([]);
    expect(result.shared).toEqual<Array<SharedMatch<number>>>([
      {
        group: 'workers',
        filter: 'jobs/+',
        members: [
          { clientId: 'c1', value: 1 },
          { clientId: 'c2', value: 2 },
          { clientId: 'c3', value: 3 },
        ],
        cursor: { turn: 0 },
      },
    ]);
    expect(tree.match('jobs').shared).toEqual([]);
    expect(tree.size).toBe(3);
  });

  it('keeps one round-robin cursor per group while the group has members', () => {
    const tree = new TopicTree<number>();
    tree.subscribe('c1', '$share/g/jobs', 1);
    const [first] = tree.match('jobs').shared;
    if (first) first.cursor.turn = 5;
    tree.subscribe('c2', '$share/g/jobs', 2);
    expect(tree.match('jobs').shared[0]?.cursor.turn).toBe(5);
    tree.unsubscribe('c1', '$share/g/jobs');
    tree.unsubscribe('c2', '$share/g/jobs');
    tree.subscribe('c3', '$share/g/jobs', 3);
    // The group was gone; a new one starts from the beginning.
    expect(tree.match('jobs').shared[0]?.cursor.turn).toBe(0);
  });

  it('returns each group on a filter separately', () => {
    const tree = new TopicTree<string>();
    tree.subscribe('c1', '$share/g1/a/b', 'x');
    tree.subscribe('c2', '$share/g2/a/b', 'x');
    tree.subscribe('c3', '$share/g2/a/b', 'x');
    tree.subscribe('c4', '$queue/a/b', 'x');
    tree.subscribe('c5', '$share/g1/a/#', 'x');
    tree.subscribe('c6', '$share/g1/+/b', 'x');
    expect(groups(tree, 'a/b')).toEqual([
      '$queue|a/b: c4',
      'g1|+/b: c6',
      'g1|a/#: c5',
      'g1|a/b: c1',
      'g2|a/b: c2,c3',
    ]);
    expect(groups(tree, 'a/c')).toEqual(['g1|a/#: c5']);
  });

  it('lets one client be in several groups, and once in each', () => {
    const tree = new TopicTree<string>();
    expect(tree.subscribe('c1', '$share/g1/t', 'first')).toBe(false);
    expect(tree.subscribe('c1', '$share/g2/t', 'other group')).toBe(false);
    expect(tree.subscribe('c1', '$share/g1/t', 'again')).toBe(true);
    expect(tree.size).toBe(2);
    expect(tree.match('t').shared).toEqual([
      {
        group: 'g1',
        filter: 't',
        members: [{ clientId: 'c1', value: 'again' }],
        cursor: { turn: 0 },
      },
      {
        group: 'g2',
        filter: 't',
        members: [{ clientId: 'c1', value: 'other group' }],
        cursor: { turn: 0 },
      },
    ]);
  });

  it('treats $queue/{filter} as the group "$queue", the same as $share/$queue/{filter}', () => {
    const tree = new TopicTree<string>();
    tree.subscribe('c1', '$queue/t/+', 'queue');
    expect(tree.match('t/1').shared).toEqual([
      {
        group: '$queue',
        filter: 't/+',
        members: [{ clientId: 'c1', value: 'queue' }],
        cursor: { turn: 0 },
      },
    ]);
    expect(tree.subscribe('c1', '$share/$queue/t/+', 'share')).toBe(true);
    expect(tree.size).toBe(1);
    expect(tree.unsubscribe('c1', '$queue/t/+')).toBe(true);
    expect(tree.size).toBe(0);
  });

  it('keeps a plain subscription and a shared one with the same filter independent', () => {
    const tree = new TopicTree<string>();
    expect(tree.subscribe('c1', 'a/+', 'plain')).toBe(false);
    expect(tree.subscribe('c1', '$share/g/a/+', 'shared')).toBe(false);
    expect(tree.subscribe('c1', '$queue/a/+', 'queued')).toBe(false);
    expect(tree.size).toBe(3);
    expect(tree.match('a/b').subscribers).toEqual([{ clientId: 'c1', value: 'plain' }]);
    expect(groups(tree, 'a/b')).toEqual(['$queue|a/+: c1', 'g|a/+: c1']);

    expect(tree.unsubscribe('c1', 'a/+')).toBe(true);
    expect(clients(tree, 'a/b')).toEqual([]);
    expect(groups(tree, 'a/b')).toEqual(['$queue|a/+: c1', 'g|a/+: c1']);

    tree.subscribe('c1', 'a/+', 'plain');
    expect(tree.unsubscribe('c1', '$share/g/a/+')).toBe(true);
    expect(clients(tree, 'a/b')).toEqual(['c1']);
    expect(groups(tree, 'a/b')).toEqual(['$queue|a/+: c1']);
  });

  it('removes members one by one and drops a group with no members left', () => {
    const tree = new TopicTree<string>();
    tree.subscribe('c1', '$share/g/t', 'x');
    tree.subscribe('c2', '$share/g/t', 'x');
    tree.subscribe('c3', '$share/g/t', 'x');
    tree.subscribe('c1', '$share/h/t', 'x');
    expect(tree.unsubscribe('c2', '$share/g/t')).toBe(true);
    expect(groups(tree, 't')).toEqual(['g|t: c1,c3', 'h|t: c1']);
    expect(tree.unsubscribe('c2', '$share/g/t')).toBe(false);
    tree.unsubscribeAll('c1');
    expect(groups(tree, 't')).toEqual(['g|t: c3']);
    expect(tree.unsubscribe('c3', '$share/g/t')).toBe(true);
    expect(tree.match('t')).toEqual({ subscribers: [], shared: [] });
    expect(tree.size).toBe(0);
    expect(tree.nodeCount()).toBe(1);
  });

  it('does not confuse a group with the same-named filter level or client', () => {
    const tree = new TopicTree<string>();
    tree.subscribe('g', '$share/g/g', 'shared');
    tree.subscribe('g', 'g/g', 'plain');
    expect(clients(tree, 'g')).toEqual([]);
    expect(groups(tree, 'g')).toEqual(['g|g: g']);
    expect(clients(tree, 'g/g')).toEqual(['g']);
    expect(groups(tree, 'g/g')).toEqual([]);
    expect(tree.unsubscribe('g', '$share/g/g/g')).toBe(false);
    expect(tree.unsubscribe('g', 'g')).toBe(false);
  });
});

describe('TopicTree subscribe and unsubscribe', () => {
  it('replaces a subscription to an identical filter and says so [MQTT-3.8.4-3]', () => {
    const tree = new TopicTree<{ qos: number }>();
    expect(tree.subscribe('c1', 'a/+', { qos: 0 })).toBe(false);
    expect(tree.subscribe('c2', 'a/+', { qos: 0 })).toBe(false);
    expect(tree.subscribe('c1', 'a/+', { qos: 2 })).toBe(true);
    expect(tree.subscribe('c1', 'a/#', { qos: 1 })).toBe(false);
    expect(tree.size).toBe(3);
    expect(tree.match('a/b').subscribers).toEqual([
      { clientId: 'c1', value: { qos: 1 } },
      { clientId: 'c1', value: { qos: 2 } },
      { clientId: 'c2', value: { qos: 0 } },
    ]);
  });

  it('does not take a filter differing only in case or a trailing "/" as identical', () => {
    const tree = new TopicTree<number>();
    expect(tree.subscribe('c1', 'a/b', 1)).toBe(false);
    expect(tree.subscribe('c1', 'A/b', 2)).toBe(false);
    expect(tree.subscribe('c1', 'a/b/', 3)).toBe(false);
    expect(tree.size).toBe(3);
  });

  it('refuses an invalid filter without changing anything', () => {
    const tree = new TopicTree<number>();
    for (const filter of ['', 'a/#/b', 'a+', '$share/g', '$share//a', '$queue/', 'a\u0000']) {
      expect(() => tree.subscribe('c1', filter, 1), filter).toThrow(TypeError);
    }
    expect(() => tree.subscribe('c1', 'sport+', 1)).toThrow(
      'invalid topic filter: "+" does not occupy a whole level of topic filter "sport+"',
    );
    expect(tree.size).toBe(0);
    expect(tree.nodeCount()).toBe(1);
  });

  it('unsubscribes one subscription and reports whether it existed', () => {
    const tree = new TopicTree<string>();
    tree.subscribe('c1', 'a/+', 'x');
    tree.subscribe('c1', 'a/#', 'x');
    tree.subscribe('c2', 'a/+', 'x');
    expect(tree.unsubscribe('c1', 'a/+')).toBe(true);
    expect(tree.unsubscribe('c1', 'a/+')).toBe(false);
    expect(tree.unsubscribe('c3', 'a/+')).toBe(false);
    expect(tree.unsubscribe('c1', 'a/b')).toBe(false);
    expect(tree.unsubscribe('c1', 'x/y/z')).toBe(false);
    expect(tree.unsubscribe('c1', 'a/+/#')).toBe(false);
    expect(tree.unsubscribe('c1', 'a+')).toBe(false);
    expect(tree.unsubscribe('c1', '')).toBe(false);
    expect(tree.size).toBe(2);
    expect(clients(tree, 'a/b').sort()).toEqual(['c1', 'c2']);
    expect(tree.unsubscribe('c1', 'a/#')).toBe(true);
    expect(clients(tree, 'a/b')).toEqual(['c2']);
    expect(clients(tree, 'a')).toEqual([]);
  });

  it('unsubscribes every subscription of a client and nothing else', () => {
    const tree = new TopicTree<string>();
    for (const filter of ['a', 'a/+', '#', '$share/g/a', '$queue/a', '$SYS/#']) {
      tree.subscribe('c1', filter, filter);
      tree.subscribe('c2', filter, filter);
    }
    expect(tree.size).toBe(12);
    tree.unsubscribeAll('c1');
    tree.unsubscribeAll('unknown');
    expect(tree.size).toBe(6);
    expect(clients(tree, 'a')).toEqual(['c2', 'c2']);
    expect(groups(tree, 'a')).toEqual(['$queue|a: c2', 'g|a: c2']);
    expect(clients(tree, '$SYS/x')).toEqual(['c2']);
    expect(tree.unsubscribe('c1', 'a')).toBe(false);

    expect(tree.subscribe('c1', 'a', 'back')).toBe(false);
    expect(clients(tree, 'a').sort()).toEqual(['c1', 'c2', 'c2']);
    tree.unsubscribeAll('c1');
    tree.unsubscribeAll('c2');
    expect(tree.size).toBe(0);
    expect(tree.match('a')).toEqual({ subscribers: [], shared: [] });
    expect(tree.nodeCount()).toBe(1);
  });

  it('counts shared members in size', () => {
    const tree = new TopicTree<null>();
    tree.subscribe('c1', 'a', null);
    tree.subscribe('c1', '$share/g/a', null);
    tree.subscribe('c2', '$share/g/a', null);
    tree.subscribe('c2', '$queue/a', null);
    tree.subscribe('c2', '$queue/a', null);
    expect(tree.size).toBe(4);
  });
});

describe('TopicTree pruning', () => {
  it('removes the nodes a subscription no longer needs', () => {
    const tree = new TopicTree<string>();
    expect(tree.nodeCount()).toBe(1);
    tree.subscribe('c1', 'a/b/c', 'x');
    expect(tree.nodeCount()).toBe(4);
    tree.subscribe('c1', 'a/+/c/#', 'x');
    expect(tree.nodeCount()).toBe(6);
    tree.unsubscribe('c1', 'a/b/c');
    expect(tree.nodeCount()).toBe(4);
    tree.unsubscribe('c1', 'a/+/c/#');
    expect(tree.nodeCount()).toBe(1);
  });

  it('keeps nodes still used by other subscriptions, as prefixes or as "#" parents', () => {
    const tree = new TopicTree<string>();
    tree.subscribe('c1', 'a/b', 'x');
    tree.subscribe('c2', 'a/b/c/d', 'x');
    tree.subscribe('c3', 'a/#', 'x');
    tree.subscribe('c4', '$share/g/a/b/+', 'x');
    tree.unsubscribe('c2', 'a/b/c/d');
    expect(clients(tree, 'a/b').sort()).toEqual(['c1', 'c3']);
    expect(groups(tree, 'a/b/c')).toEqual(['g|a/b/+: c4']);
    tree.unsubscribe('c1', 'a/b');
    expect(clients(tree, 'a/b')).toEqual(['c3']);
    expect(groups(tree, 'a/b/c')).toEqual(['g|a/b/+: c4']);
    tree.unsubscribe('c4', '$share/g/a/b/+');
    expect(tree.nodeCount()).toBe(2);
    expect(clients(tree, 'a/b/c')).toEqual(['c3']);
    expect(clients(tree, 'a')).toEqual(['c3']);
    tree.unsubscribe('c3', 'a/#');
    expect(tree.nodeCount()).toBe(1);
  });

  it('leaks no nodes over many subscribe/unsubscribe cycles', () => {
    const tree = new TopicTree<number>();
    const next = random(7);
    const pick = <V>(items: readonly V[]): V => items[Math.floor(next() * items.length)] as V;
    for (let round = 0; round < 20; round++) {
      const subscribed: Array<[string, string]> = [];
      for (let index = 0; index < 500; index++) {
        const depth = 1 + Math.floor(next() * 5);
        const levels = Array.from({ length: depth }, () => pick(['a', 'b', '', '+', `r${round}`]));
        if (next() < 0.3) levels.push('#');
        const prefix = pick(['', '', '$share/g/', '$queue/']);
        const filter = levels.join('/') || '/'; // not the (invalid) empty filter
        const entry: [string, string] = [pick(['c1', 'c2', 'c3']), prefix + filter];
        tree.subscribe(entry[0], entry[1], index);
        subscribed.push(entry);
      }
      expect(tree.nodeCount()).toBeGreaterThan(1);
      for (const [clientId, filter] of subscribed) tree.unsubscribe(clientId, filter);
      expect(tree.size).toBe(0);
      expect(tree.nodeCount()).toBe(1);
    }
  });
});

describe('TopicTree at scale and against a reference matcher', () => {
  it('matches 100,000 subscriptions on distinct topics correctly', () => {
    const tree = new TopicTree<number>();
    const count = 100_000;
    let replaced = 0;
    for (let index = 0; index < count; index++) {
      if (tree.subscribe(`c${index}`, `devices/${index}/up`, index)) replaced++;
    }
    expect(replaced).toBe(0);
    tree.subscribe('wild', 'devices/+/up', -1);
    tree.subscribe('w1', '$share/workers/devices/#', -2);
    tree.subscribe('w2', '$share/workers/devices/#', -3);
    expect(tree.size).toBe(count + 3);

    for (let index = 0; index < count; index++) {
      const result = tree.match(`devices/${index}/up`);
      if (
        result.subscribers.length !== 2 ||
        result.subscribers[0]?.clientId !== `c${index}` ||
        result.subscribers[0].value !== index ||
        result.subscribers[1]?.clientId !== 'wild' ||
        result.shared.length !== 1 ||
        result.shared[0]?.members.length !== 2
      ) {
        expect.fail(`devices/${index}/up matched ${JSON.stringify(result)}`);
      }
    }
    expect(clients(tree, `devices/${count}/up`)).toEqual(['wild']);
    expect(clients(tree, 'devices/7/down')).toEqual([]);
    expect(groups(tree, 'devices/7/down')).toEqual(['workers|devices/#: w1,w2']);
    expect(clients(tree, 'devices/7')).toEqual([]);

    for (let index = 0; index < count; index += 2)
      tree.unsubscribe(`c${index}`, `devices/${index}/up`);
    expect(tree.size).toBe(count / 2 + 3);
    expect(clients(tree, 'devices/4/up')).toEqual(['wild']);
    expect(clients(tree, 'devices/5/up')).toEqual(['c5', 'wild']);
    for (let index = 1; index < count; index += 2) tree.unsubscribeAll(`c${index}`);
    for (const client of ['wild', 'w1', 'w2']) tree.unsubscribeAll(client);
    expect(tree.size).toBe(0);
    expect(tree.nodeCount()).toBe(1);
    // A generous limit for slow CI machines: this checks results, not speed.
  }, 60_000);

  it('agrees with a brute-force matcher over random operations, without duplicates', () => {
    const tree = new TopicTree<string>();
    const next = random(42);
    const pick = <V>(items: readonly V[]): V => items[Math.floor(next() * items.length)] as V;
    const filterLevels = ['a', 'b', '', '+', '$s'] as const;
    const topicLevels = ['a', 'b', 'c', '', '$s'] as const;
    interface Subscribed {
      group: string;
      filter: string;
      value: string;
    }
    /** clientId → raw filter → what it was subscribed as */
    const model = new Map<string, Map<string, Subscribed>>();
    const stats = { replaced: 0, unsubscribed: 0, matched: 0 };

    for (let step = 0; step < 4000; step++) {
      const clientId = pick(['c0', 'c1', 'c2', 'c3', 'c4']);
      const own = model.get(clientId) ?? new Map<string, Subscribed>();
      model.set(clientId, own);
      const levels: string[] = Array.from({ length: 1 + Math.floor(next() * 4) }, () =>
        pick(filterLevels),
      );
      if (next() < 0.25) levels.push('#');
      let filter = levels.join('/') || '/'; // not the (invalid) empty filter
      let [prefix, group]: [string, string] = pick([
        ['', ''],
        ['', ''],
        ['$share/g1/', 'g1'],
        ['$share/g2/', 'g2'],
        ['$queue/', '$queue'],
      ]);
      // Often reuse one of the client's subscriptions, to replace or remove it.
      const existing = next() < 0.4 ? [...own.values()] : [];
      if (existing.length > 0) {
        const reused = pick(existing);
        ({ filter, group } = reused);
        prefix = group === '' ? '' : group === '$queue' ? '$queue/' : `$share/${group}/`;
      }
      const raw = prefix + filter;
      const action = next();
      if (action < 0.6) {
        const value = `${clientId}#${step}`;
        const replaced = tree.subscribe(clientId, raw, value);
        expect(replaced).toBe(own.has(raw));
        if (replaced) stats.replaced++;
        own.set(raw, { group, filter, value });
      } else if (action < 0.97) {
        const removed = tree.unsubscribe(clientId, raw);
        expect(removed).toBe(own.delete(raw));
        if (removed) stats.unsubscribed++;
      } else {
        tree.unsubscribeAll(clientId);
        own.clear();
      }

      if (step % 20 !== 0) continue;
      let size = 0;
      for (const subscriptions of model.values()) size += subscriptions.size;
      expect(tree.size).toBe(size);
      for (let probe = 0; probe < 10; probe++) {
        const topic =
          Array.from({ length: 1 + Math.floor(next() * 5) }, () => pick(topicLevels)).join('/') ||
          'c'; // not the (invalid) empty topic name
        const expectedPlain: string[] = [];
        const expectedShared = new Map<string, string[]>();
        for (const [client, subscriptions] of model) {
          for (const { group: shareGroup, filter: subscribed, value } of subscriptions.values()) {
            if (!referenceMatches(subscribed, topic)) continue;
            stats.matched++;
            if (shareGroup === '') expectedPlain.push(value);
            else {
              const groupKey = `${shareGroup}|${subscribed}`;
              expectedShared.set(groupKey, [
                ...(expectedShared.get(groupKey) ?? []),
                `${client}=${value}`,
              ]);
            }
          }
        }
        const result = tree.match(topic);
        const plain = result.subscribers.map((match) => match.value);
        expect(plain.sort(), topic).toEqual(expectedPlain.sort());
        const shared = new Map<string, string[]>();
        for (const match of result.shared) {
          const groupKey = `${match.group}|${match.filter}`;
          expect(shared.has(groupKey), `duplicate group ${groupKey}`).toBe(false);
          expect(match.members.length).toBeGreaterThan(0);
          shared.set(
            groupKey,
            match.members.map((member) => `${member.clientId}=${member.value}`).sort(),
          );
        }
        for (const members of expectedShared.values()) members.sort();
        expect(shared, topic).toEqual(expectedShared);
      }
    }

    // The run exercised replacing, removing and matching, not just adding.
    expect(stats.replaced).toBeGreaterThan(100);
    expect(stats.unsubscribed).toBeGreaterThan(300);
    expect(stats.matched).toBeGreaterThan(1000);
    for (const clientId of model.keys()) tree.unsubscribeAll(clientId);
    expect(tree.size).toBe(0);
    expect(tree.nodeCount()).toBe(1);
  });
});

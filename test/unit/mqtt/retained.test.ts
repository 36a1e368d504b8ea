import { describe, expect, it } from 'vitest';
import type { BrokerMessage } from '../../../src/mqtt/message.js';
import { RetainedStore } from '../../../src/mqtt/retained.js';

function message(topic: string, payload = 'x', expiresAt?: number): BrokerMessage {
  return {
    topic,
    payload: Buffer.from(payload),
    qos: 0,
    retain: true,
    properties: {},
    expiresAt,
    origin: { clientId: 'c', username: undefined },
  };
}

function topics(store: RetainedStore, filter: string, now = 0): string[] {
  return store
    .match(filter, now)
    .map((found) => found.topic)
    .sort();
}

describe('RetainedStore', () => {
  it('matches filters with +, # (parent level included) and exact topics', () => {
    const store = new RetainedStore();
    for (const topic of ['a', 'a/b', 'a/b/c', 'a/c', 'x/b', '/lead', 'a//e'])
      store.store(message(topic));
    expect(topics(store, 'a/b')).toEqual(['a/b']);
    expect(topics(store, 'a/#')).toEqual(['a', 'a//e', 'a/b', 'a/b/c', 'a/c']);
    expect(topics(store, '+/b')).toEqual(['a/b', 'x/b']);
    expect(topics(store, 'a/+/+')).toEqual(['a//e', 'a/b/c']);
    expect(topics(store, '+/lead')).toEqual(['/lead']);
    expect(topics(store, '#')).toHaveLength(7);
    expect(topics(store, 'nothing/#')).toEqual([]);
  });

  it('keeps $-topics from filters that start with a wildcard [MQTT-4.7.2-1]', () => {
    const store = new RetainedStore();
    store.store(message('$SYS/uptime'));
    store.store(message('app/$x'));
    expect(topics(store, '#')).toEqual(['app/$x']);
    expect(topics(store, '+/uptime')).toEqual([]);
    expect(topics(store, '$SYS/#')).toEqual(['$SYS/uptime']);
    expect(topics(store, 'app/+')).toEqual(['app/$x']);
  });

  it('replaces, deletes with an empty payload, and prunes', () => {
    const store = new RetainedStore();
    store.store(message('a/b', 'one'));
    store.store(message('a/b', 'two'));
    expect(store.size).toBe(1);
    expect(store.match('a/b', 0).map((found) => found.payload.toString())).toEqual(['two']);
    store.store(message('a/b', ''));
    expect(store.size).toBe(0);
    expect(topics(store, '#')).toEqual([]);
    store.store(message('a/b/c/d', ''));
    expect(store.size).toBe(0);
  });

  it('drops expired messages on match and on purge', () => {
    const store = new RetainedStore();
    store.store(message('a/soon', 'x', 100));
    store.store(message('a/later', 'x', 1_000));
    store.store(message('b/soon', 'x', 100));
    store.store(message('a/never'));
    expect(topics(store, 'a/#', 500)).toEqual(['a/later', 'a/never']);
    expect(store.size).toBe(3);
    expect(store.purgeExpired(2_000)).toBe(2);
    expect(store.size).toBe(1);
    expect(topics(store, '#', 2_000)).toEqual(['a/never']);
  });

  it('keeps within retained.maxMessages and retained.maxBytes: replacements and clearings fit', () => {
    const store = new RetainedStore({ maxMessages: 3, maxBytes: 20 });
    expect(store.store(message('a', 'xxxx'))).toBe(true); // 5 bytes
    expect(store.store(message('b', 'xxxx'))).toBe(true); // 10
    expect(store.store(message('c', 'xxxx'))).toBe(true); // 15
    expect(store.store(message('d', 'x'))).toBe(false); // a fourth message
    expect(store.size).toBe(3);
    // replacing a topic's message needs room only for the difference
    expect(store.store(message('a', 'xxxxxxxxx'))).toBe(true); // 20
    expect(store.store(message('b', 'xxxxx'))).toBe(false); // 21
    expect(store.bytes).toBe(20);
    // clearing always fits, and frees room
    expect(store.store(message('c', ''))).toBe(true);
    expect(store.size).toBe(2);
    expect(store.bytes).toBe(15);
    expect(store.store(message('d', 'xxxx'))).toBe(true);
    expect(topics(store, '#')).toEqual(['a', 'b', 'd']);
  });

  it('holds 100,000 topics within its byte limit and refuses beyond it', () => {
    const store = new RetainedStore({ maxMessages: 1_000_000, maxBytes: 2_000_000 });
    let stored = 0;
    for (let index = 0; index < 100_000; index++) {
      if (store.store(message(`sensors/${index}/state`, 'on'))) stored++;
    }
    expect(store.bytes).toBeLessThanOrEqual(2_000_000);
    expect(stored).toBe(store.size);
    expect(stored).toBeLessThan(100_000);
    expect(stored).toBeGreaterThan(90_000);
  });
});

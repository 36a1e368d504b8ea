import type { Admin } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { PartitionCounts } from '../../../src/kafka/partition-counts.js';
import { waitFor } from '../../support/wait-for.js';

function admin(counts: Map<string, number>, connectFailures = 0) {
  const calls = { connect: 0, fetch: 0, disconnect: 0 };
  let failures = connectFailures;
  const fake = {
    connect: () => {
      calls.connect++;
      return failures-- > 0 ? Promise.reject(new Error('no broker')) : Promise.resolve();
    },
    disconnect: () => {
      calls.disconnect++;
      return Promise.resolve();
    },
    fetchTopicMetadata: ({ topics }: { topics: string[] }) => {
      calls.fetch++;
      const count = counts.get(topics[0] ?? '');
      if (count === undefined) return Promise.reject(new Error('unknown topic'));
      return Promise.resolve({
        topics: [{ name: topics[0], partitions: new Array(count).fill({}) }],
      });
    },
  };
  return { admin: fake as unknown as Admin, calls };
}

describe('PartitionCounts', () => {
  it('fetches a count once, however many ask at the same time', async () => {
    const { admin: client, calls } = admin(new Map([['t', 3]]));
    const counts = new PartitionCounts(client);
    expect(counts.cached('t')).toBeUndefined();
    await Promise.all([counts.fetch('t'), counts.fetch('t')]);
    expect(counts.cached('t')).toBe(3);
    expect(calls).toEqual({ connect: 1, fetch: 1, disconnect: 0 });
    await counts.close();
    expect(calls.disconnect).toBe(1);
  });

  it('remembers a failed lookup as null, with the reason', async () => {
    const { admin: client } = admin(new Map());
    const counts = new PartitionCounts(client);
    await counts.fetch('x');
    expect(counts.cached('x')).toBeNull();
    expect(counts.error('x')).toBe('unknown topic');
  });

  it('answers a stale count while it fetches a fresh one', async () => {
    const partitions = new Map([['t', 2]]);
    const { admin: client, calls } = admin(partitions);
    const counts = new PartitionCounts(client, 0);
    await counts.fetch('t');
    partitions.set('t', 6);
    await new Promise((resolve) => setTimeout(resolve, 2));
    expect(counts.cached('t')).toBe(2);
    await waitFor(() => counts.cached('t') === 6);
    expect(calls.fetch).toBeGreaterThanOrEqual(2);
  });

  it('connects again after a failed connection', async () => {
    const { admin: client, calls } = admin(new Map([['t', 1]]), 1);
    const counts = new PartitionCounts(client);
    await counts.fetch('t');
    expect(counts.error('t')).toBe('no broker');
    await counts.fetch('t');
    expect(counts.cached('t')).toBe(1);
    expect(calls.connect).toBe(2);
  });

  it('keeps a known count through one failed refresh (a partition without leader), not two', async () => {
    const partitions = new Map([['t', 3]]);
    const { admin: client } = admin(partitions);
    const counts = new PartitionCounts(client);
    await counts.fetch('t');
    partitions.delete('t'); // the next lookups fail
    await counts.fetch('t');
    expect(counts.cached('t')).toBe(3);
    expect(counts.error('t')).toBe('unknown topic');
    await counts.fetch('t');
    expect(counts.cached('t')).toBeNull();
  });

  it('tells a topic Kafka does not have from a lookup that failed', async () => {
    const { admin: client } = admin(new Map());
    const fake = client as unknown as { fetchTopicMetadata: () => Promise<never> };
    fake.fetchTopicMetadata = () =>
      Promise.reject(
        Object.assign(new Error('no such topic'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' }),
      );
    const counts = new PartitionCounts(client);
    await counts.fetch('gone');
    expect(counts.missing('gone')).toBe(true);
    fake.fetchTopicMetadata = () => Promise.reject(new Error('Connection error'));
    await counts.fetch('other');
    expect(counts.missing('other')).toBe(false);
    expect(counts.cached('other')).toBeNull();
  });
});

import { describe, expect, it } from 'vitest';
import {
  clientDetail,
  clientMatches,
  clientView,
  filterMatchesTopic,
  parseClientFilters,
  subscriptionRows,
} from '../../../src/admin/client-views.js';
import type { ClientSnapshot } from '../../../src/mqtt/broker.js';
import { NEVER_EXPIRES, type Subscription } from '../../../src/mqtt/session.js';

const subscription = (qos: 0 | 1 | 2, extra: Partial<Subscription> = {}): Subscription => ({
  qos,
  noLocal: false,
  retainAsPublished: false,
  retainHandling: 0,
  identifier: undefined,
  ...extra,
});

function connected(
  clientId: string,
  username?: string,
  address = '127.0.0.1:5000',
): ClientSnapshot {
  return {
    clientId,
    username,
    connection: {
      address,
      protocolVersion: 5,
      keepAlive: 30,
      cleanStart: true,
      connectedAt: Date.UTC(2026, 0, 1),
    },
    sessionExpiry: 0,
    disconnectedAt: undefined,
    subscriptions: new Map([['a/+', subscription(1)]]),
    inflight: 2,
    queued: 3,
  };
}

function kept(clientId: string, expiry: number): ClientSnapshot {
  return {
    clientId,
    username: 'u',
    connection: undefined,
    sessionExpiry: expiry,
    disconnectedAt: Date.UTC(2026, 0, 1),
    subscriptions: new Map(),
    inflight: 0,
    queued: 7,
  };
}

describe('client views', () => {
  it('shows a connected client with its connection', () => {
    expect(clientView(connected('c1', 'alice'))).toEqual({
      clientId: 'c1',
      username: 'alice',
      connected: true,
      address: '127.0.0.1:5000',
      protocolVersion: 5,
      keepAlive: 30,
      cleanStart: true,
      sessionExpiryInterval: 0,
      sessionExpiresAt: null,
      connectedAt: '2026-01-01T00:00:00.000Z',
      disconnectedAt: null,
      subscriptionCount: 1,
      inflight: 2,
      queued: 3,
    });
  });

  it('shows a kept session with when it ends, and never for an infinite expiry', () => {
    const view = clientView(kept('c2', 60));
    expect(view).toMatchObject({
      connected: false,
      address: null,
      protocolVersion: null,
      disconnectedAt: '2026-01-01T00:00:00.000Z',
      sessionExpiresAt: '2026-01-01T00:01:00.000Z',
      queued: 7,
    });
    expect(clientView(kept('c3', NEVER_EXPIRES)).sessionExpiresAt).toBeNull();
  });

  it('details the subscriptions with their options and share group', () => {
    const snapshot = connected('c1');
    snapshot.subscriptions = new Map([
      ['a/#', subscription(2, { noLocal: true, identifier: 7, retainHandling: 2 })],
      ['$share/g1/b/+', subscription(0)],
    ]);
    expect(clientDetail(snapshot).subscriptions).toEqual([
      {
        filter: 'a/#',
        qos: 2,
        shareGroup: null,
        options: {
          noLocal: true,
          retainAsPublished: false,
          retainHandling: 2,
          subscriptionIdentifier: 7,
        },
      },
      {
        filter: '$share/g1/b/+',
        qos: 0,
        shareGroup: 'g1',
        options: {
          noLocal: false,
          retainAsPublished: false,
          retainHandling: 0,
          subscriptionIdentifier: null,
        },
      },
    ]);
  });
});

describe('client filters', () => {
  const all = [
    connected('sensor-1', 'alice', '10.0.0.1:1'),
    connected('sensor-2', 'bob', '10.0.1.1:2'),
    kept('pump-1', 60),
  ];
  const ids = (query: string): string[] => {
    const filters = parseClientFilters(new URLSearchParams(query));
    return all.filter((snapshot) => clientMatches(snapshot, filters)).map((s) => s.clientId);
  };

  it('filters by client id prefix, whole user name, address prefix and connected', () => {
    expect(ids('')).toEqual(['sensor-1', 'sensor-2', 'pump-1']);
    expect(ids('clientId=sensor')).toEqual(['sensor-1', 'sensor-2']);
    expect(ids('username=ali')).toEqual([]);
    expect(ids('username=alice')).toEqual(['sensor-1']);
    expect(ids('address=10.0.1.')).toEqual(['sensor-2']);
    expect(ids('connected=false')).toEqual(['pump-1']);
    expect(ids('connected=true&clientId=sensor-2')).toEqual(['sensor-2']);
  });

  it('refuses connected other than true or false', () => {
    expect(() => parseClientFilters(new URLSearchParams('connected=yes'))).toThrow(/true or false/);
  });
});

describe('subscription rows', () => {
  const a = connected('a');
  a.subscriptions = new Map([
    ['home/+/temp', subscription(1)],
    ['$share/workers/jobs/#', subscription(2)],
  ]);
  const b = connected('b');
  b.subscriptions = new Map([
    ['#', subscription(0)],
    ['office/temp', subscription(0)],
  ]);

  it('lists every subscription with its share group', () => {
    expect(subscriptionRows([a, b], {})).toEqual([
      { clientId: 'a', filter: 'home/+/temp', qos: 1, shareGroup: null },
      { clientId: 'a', filter: '$share/workers/jobs/#', qos: 2, shareGroup: 'workers' },
      { clientId: 'b', filter: '#', qos: 0, shareGroup: null },
      { clientId: 'b', filter: 'office/temp', qos: 0, shareGroup: null },
    ]);
  });

  it('keeps those matching a topic name (shared ones by their filter) and of a client', () => {
    const filters = (topic: string): string[] =>
      subscriptionRows([a, b], { topic }).map((row) => `${row.clientId} ${row.filter}`);
    expect(filters('home/kitchen/temp')).toEqual(['a home/+/temp', 'b #']);
    expect(filters('jobs/1/2')).toEqual(['a $share/workers/jobs/#', 'b #']);
    expect(subscriptionRows([a, b], { clientId: 'b', topic: 'office/temp' })).toHaveLength(2);
  });
});

describe('filterMatchesTopic', () => {
  it.each([
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['+/+', 'a', false],
    ['+', '', true],
    ['a/b', 'a', false],
    ['#', '$SYS/broker', false],
    ['+/broker', '$SYS/broker', false],
    ['$SYS/#', '$SYS/broker', true],
    ['a//b', 'a//b', true],
  ])('%s matches %s: %s', (filter, topic, matches) => {
    expect(filterMatchesTopic(filter, topic)).toBe(matches);
  });
});

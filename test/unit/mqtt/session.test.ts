import type { IPublishPacket, Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import type { BrokerMessage } from '../../../src/mqtt/message.js';
import { RetainedStore } from '../../../src/mqtt/retained.js';
import { ALLOW_ALL } from '../../../src/auth/permissions.js';
import {
  Session,
  type Delivery,
  type DropReason,
  type SessionLink,
} from '../../../src/mqtt/session.js';

function message(payload: string, expiresAt?: number): BrokerMessage {
  return {
    topic: 't',
    payload: Buffer.from(payload),
    qos: 1,
    retain: false,
    properties: {},
    expiresAt,
    origin: { clientId: 'publisher', username: undefined },
  };
}

/** A connection that records what the session writes. */
function link(
  receiveMaximum = 10,
): SessionLink & { published: IPublishPacket[]; sent: Packet[]; writeCongested: boolean } {
  const published: IPublishPacket[] = [];
  const sent: Packet[] = [];
  return {
    protocolVersion: 5,
    receiveMaximum,
    writeCongested: false,
    published,
    sent,
    sendPublish: (packet) => {
      published.push(packet);
      return true;
    },
    send: (packet) => {
      sent.push(packet);
    },
  };
}

function tracked(payload: string, qos: Delivery['qos'], settled: string[]): Delivery {
  return {
    message: message(payload),
    qos,
    retain: false,
    subscriptionIds: [],
    settle: () => settled.push(payload),
  };
}

describe('Session settlement', () => {
  it('settles QoS 0 when written, QoS 1 on PUBACK and QoS 2 on PUBCOMP', () => {
    const drops: DropReason[] = [];
    const session = new Session('c', 10, { dropped: (reason) => drops.push(reason) });
    const connection = link();
    session.attach(connection);
    const settled: string[] = [];
    session.deliver(tracked('zero', 0, settled));
    session.deliver(tracked('one', 1, settled));
    session.deliver(tracked('two', 2, settled));
    expect(settled).toEqual(['zero']);
    const [, one, two] = connection.published;
    session.acknowledge('puback', one?.messageId ?? 0);
    expect(settled).toEqual(['zero', 'one']);
    session.acknowledge('pubrec', two?.messageId ?? 0);
    expect(settled).toEqual(['zero', 'one']);
    session.acknowledge('pubcomp', two?.messageId ?? 0);
    expect(settled).toEqual(['zero', 'one', 'two']);
    expect(drops).toEqual([]);
  });

  it('settles what it drops: offline QoS 0, expired, beyond the queue limit, and everything at session end', () => {
    const drops: DropReason[] = [];
    const session = new Session('c', 1, { dropped: (reason) => drops.push(reason) });
    const settled: string[] = [];
    session.deliver(tracked('offline-0', 0, settled));
    session.deliver({ ...tracked('expired', 1, settled), message: message('expired', 1) });
    session.deliver(tracked('queued', 1, settled));
    session.deliver(tracked('overflow', 1, settled));
    expect(settled).toEqual(['offline-0', 'expired', 'overflow']);
    expect(drops).toEqual(['offline-qos0', 'expired', 'queue-full']);
    session.clear();
    expect(settled).toEqual(['offline-0', 'expired', 'overflow', 'queued']);
  });

  it('keeps queued messages unsettled while the client is away and settles them once acknowledged', () => {
    const session = new Session('c', 10, { dropped: () => undefined });
    const settled: string[] = [];
    session.deliver(tracked('a', 1, settled));
    session.deliver(tracked('b', 1, settled));
    const connection = link(1);
    session.attach(connection);
    expect(connection.published.map((packet) => packet.payload.toString())).toEqual(['a']);
    session.acknowledge('puback', connection.published[0]?.messageId ?? 0);
    session.acknowledge('puback', connection.published[1]?.messageId ?? 0);
    expect(settled).toEqual(['a', 'b']);
  });

  it('drops QoS 0 and holds QoS 1 for a subscriber that does not read, and sends them once it does', () => {
    const drops: DropReason[] = [];
    const session = new Session('c', 10, { dropped: (reason) => drops.push(reason) });
    const connection = link();
    session.attach(connection);
    connection.writeCongested = true;
    const settled: string[] = [];
    session.deliver(tracked('lost', 0, settled));
    session.deliver(tracked('kept', 1, settled));
    expect(drops).toEqual(['slow-subscriber']);
    expect(connection.published).toEqual([]);
    connection.writeCongested = false;
    session.resumeDelivery();
    expect(connection.published.map((packet) => packet.payload.toString())).toEqual(['kept']);
  });
});

describe('Session.withdraw', () => {
  it('drops and settles queued and unacknowledged messages the client may no longer receive', () => {
    const drops: DropReason[] = [];
    const settled: string[] = [];
    const session = new Session('c', 10, { dropped: (reason) => drops.push(reason) });
    const connection = link(1);
    session.attach(connection);
    session.deliver(tracked('secret-inflight', 1, settled));
    session.deliver(tracked('secret-queued', 1, settled));
    session.deliver(tracked('open-queued', 1, settled));
    session.detach();
    expect(
      session.withdraw(({ message }) => !message.payload.toString().startsWith('secret')),
    ).toBe(2);
    expect(settled).toEqual(['secret-inflight', 'secret-queued']);
    expect(drops).toEqual(['not-authorized', 'not-authorized']);
    const again = link(10);
    session.attach(again);
    expect(again.published.map((packet) => packet.payload.toString())).toEqual(['open-queued']);
  });
});

/** A retained message published at `qos` to `topic`, with the topic as its payload. */
function retained(topic: string, qos: Delivery['qos'] = 1, expiresAt?: number): BrokerMessage {
  return { ...message(topic, expiresAt), topic, qos, retain: true };
}

/** A store retaining `count` messages on `prefix/0` … `prefix/{count-1}`. */
function storeWith(count: number, prefix = 'r', store = new RetainedStore()): RetainedStore {
  for (let i = 0; i < count; i++) store.store(retained(`${prefix}/${i}`));
  return store;
}

/**
 * A connection whose socket takes `capacity` publishes, then is congested until the client has
 * read them: `drain()` empties it and tells the session, as the socket's 'drain' event does.
 */
function pacedLink(capacity: number, receiveMaximum = 65_535) {
  const published: IPublishPacket[] = [];
  let buffered = 0;
  return {
    protocolVersion: 5 as const,
    receiveMaximum,
    published,
    get writeCongested() {
      return buffered >= capacity;
    },
    sendPublish: (packet: IPublishPacket) => {
      buffered++;
      published.push(packet);
      return true;
    },
    send: () => undefined,
    drain: (session: Session) => {
      buffered = 0;
      session.resumeDelivery();
    },
  };
}

const topics = (items: Array<{ topic: string }>): string[] => items.map(({ topic }) => topic);

describe('Session.replayRetained', () => {
  it('writes a large retained set at QoS 0 in order as the client reads it, dropping none', () => {
    const drops: DropReason[] = [];
    const session = new Session('c', 100, { dropped: (reason) => drops.push(reason) });
    const connection = pacedLink(64);
    session.attach(connection);
    const store = storeWith(10_000);
    const matched = store.match('#', Date.now());
    session.replayRetained(store, matched, { qos: 0, identifier: 7 });
    expect(connection.published).toHaveLength(64); // paced by the socket, the rest waits
    for (let round = 0; round < 200 && connection.published.length < 10_000; round++) {
      connection.drain(session);
    }
    expect(topics(connection.published)).toEqual(topics(matched));
    expect(connection.published.every(({ qos, retain }) => qos === 0 && retain)).toBe(true);
    expect(connection.published[9_999]?.properties?.subscriptionIdentifier).toBe(7);
    expect(drops).toEqual([]);
  });

  it('keeps QoS 1 within the Receive Maximum and queues later QoS 1 messages behind it', () => {
    const session = new Session('c', 100, { dropped: () => undefined });
    const connection = link(5);
    connection.writeCongested = true;
    session.attach(connection);
    const store = storeWith(20);
    const matched = store.match('#', Date.now());
    session.replayRetained(store, matched, { qos: 1, identifier: undefined });
    // the socket has emptied but its 'drain' has not come yet: the live message still waits
    connection.writeCongested = false;
    session.deliver({ message: message('live'), qos: 1, retain: false, subscriptionIds: [] });
    expect(connection.published).toEqual([]);
    session.resumeDelivery();
    expect(topics(connection.published)).toEqual(topics(matched.slice(0, 5)));
    for (let acked = 0; acked < connection.published.length; acked++) {
      const packet = connection.published[acked] as IPublishPacket;
      expect(packet.qos).toBe(1);
      session.acknowledge('puback', packet.messageId ?? 0);
      // one more goes per PUBACK: never more than 5 unacknowledged
      expect(connection.published.length - (acked + 1)).toBeLessThanOrEqual(5);
    }
    expect(topics(connection.published)).toEqual([...topics(matched), 't']);
  });

  it('passes over messages replaced, cleared, expired or no longer readable while they waited', () => {
    const drops: DropReason[] = [];
    const session = new Session('c', 100, { dropped: (reason) => drops.push(reason) });
    const connection = link();
    connection.writeCongested = true;
    session.attach(connection);
    const store = new RetainedStore();
    for (const topic of ['r/kept', 'r/replaced', 'r/cleared', 'r/secret', 'r/also-kept'])
      store.store(retained(topic));
    const expiring = retained('r/expiring', 1, Date.now() + 60_000);
    store.store(expiring);
    session.replayRetained(store, store.match('#', Date.now()), { qos: 0, identifier: undefined });
    store.store({ ...retained('r/replaced'), payload: Buffer.from('newer') });
    store.store({ ...retained('r/cleared'), payload: Buffer.alloc(0) });
    expiring.expiresAt = Date.now() - 1;
    session.permissions = { ...ALLOW_ALL, canReceive: (topic) => topic !== 'r/secret' };
    connection.writeCongested = false;
    session.resumeDelivery();
    expect(topics(connection.published).sort()).toEqual(['r/also-kept', 'r/kept']);
    expect(drops).toEqual(['expired']);
  });

  it('holds at most retained.maxMessages waiting whatever the number of subscriptions', () => {
    const drops: DropReason[] = [];
    const session = new Session('c', 100, { dropped: (reason) => drops.push(reason) });
    const connection = pacedLink(0); // congested from the start
    session.attach(connection);
    const store = storeWith(10, 'r', new RetainedStore({ maxMessages: 10, maxBytes: 10_000 }));
    session.replayRetained(store, store.match('r/#', Date.now()), { qos: 0, identifier: 1 });
    session.replayRetained(store, store.match('r/+', Date.now()), { qos: 0, identifier: 2 });
    expect(drops).toEqual(Array<DropReason>(10).fill('queue-full'));
    connection.drain(session);
    expect(connection.published).toEqual([]); // still congested: it waits
  });

  it('drops QoS 0 and queues QoS 1, ahead of what waits behind it, when the client goes', () => {
    const drops: DropReason[] = [];
    const session = new Session('c', 4, { dropped: (reason) => drops.push(reason) });
    session.attach(pacedLink(0));
    const store = storeWith(5, 'b', storeWith(3, 'a'));
    const matched = store.match('b/#', Date.now());
    session.replayRetained(store, store.match('a/#', Date.now()), { qos: 0, identifier: 1 });
    session.replayRetained(store, matched, { qos: 1, identifier: 2 });
    session.deliver({ message: message('live'), qos: 1, retain: false, subscriptionIds: [] });
    expect(session.queued).toBe(1);
    session.detach();
    // 3 QoS 0 not kept for an absent client; 3 QoS 1 fill the queue of 4 beside the live one
    expect(drops).toEqual([
      ...Array<DropReason>(3).fill('offline-qos0'),
      ...Array<DropReason>(2).fill('queue-full'),
    ]);
    const again = link(10);
    session.attach(again);
    expect(topics(again.published)).toEqual([...topics(matched.slice(0, 3)), 't']);
    expect(again.published.slice(0, 3).every(({ qos, retain }) => qos === 1 && retain)).toBe(true);
    expect(again.published[0]?.properties?.subscriptionIdentifier).toBe(2);
  });
});

import type { IPublishPacket, Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import type { BrokerMessage } from '../../../src/mqtt/message.js';
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
    const session = new Session('c', 10, (reason) => drops.push(reason));
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
    const session = new Session('c', 1, (reason) => drops.push(reason));
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
    const session = new Session('c', 10, () => undefined);
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
    const session = new Session('c', 10, (reason) => drops.push(reason));
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
    const session = new Session('c', 10, (reason) => drops.push(reason));
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

import type { IPublishPacket, Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { MailboxCursors, packetIdFor } from '../../../src/cluster/mailbox-cursors.js';
import type { MailboxPosition } from '../../../src/cluster/session-record.js';
import { Session, type SessionLink } from '../../../src/mqtt/session.js';

/** One partition of the messages topic, read by a stream that the cursors can seek. */
class FakePartition {
  readonly records: Array<{ clientId: string; payload: string; qos: 0 | 1 | 2 }> = [];
  index = 0;
  seeks: bigint[] = [];

  constructor(readonly cursors: () => MailboxCursors) {}

  append(clientId: string, payload: string, qos: 0 | 1 | 2 = 1): void {
    this.records.push({ clientId, payload, qos });
  }

  /** Delivers every record not read yet, following seeks made meanwhile. */
  pump(): void {
    while (this.index < this.records.length) {
      const offset = this.index++;
      const record = this.records[offset];
      if (record === undefined) continue;
      this.cursors().record(0, BigInt(offset), record.clientId, () => ({
        message: {
          topic: `t/${record.clientId}`,
          payload: Buffer.from(record.payload),
          qos: record.qos,
          retain: false,
          properties: {},
          expiresAt: undefined,
          origin: { clientId: 'p', username: undefined },
        },
        qos: record.qos,
        retain: false,
        subscriptionIds: [],
      }));
    }
  }
}

class FakeLink implements SessionLink {
  readonly protocolVersion = 5 as const;
  readonly writeCongested = false;
  readonly sent: Packet[] = [];
  constructor(readonly receiveMaximum = 100) {}

  sendPublish(packet: IPublishPacket): boolean {
    this.sent.push(packet);
    return true;
  }

  send(packet: Packet): void {
    this.sent.push(packet);
  }

  get publishes(): IPublishPacket[] {
    return this.sent.filter((packet): packet is IPublishPacket => packet.cmd === 'publish');
  }
}

function setup(feedLimit = 100) {
  const changed: Array<{ clientId: string; done: (() => void) | undefined }> = [];
  const holder: { cursors?: MailboxCursors } = {};
  const partition = new FakePartition(() => holder.cursors as MailboxCursors);
  const cursors = new MailboxCursors(
    {
      seek: (_partition, offset) => {
        partition.seeks.push(offset);
        partition.index = Number(offset);
      },
      changed: (clientId, done) => changed.push({ clientId, done }),
    },
    feedLimit,
  );
  holder.cursors = cursors;
  cursors.startAt(0, 0n);
  return { cursors, partition, changed };
}

function connect(
  cursors: MailboxCursors,
  clientId: string,
  position?: MailboxPosition,
  receiveMaximum = 100,
) {
  const session = new Session(clientId, 1000, { dropped: () => undefined });
  const link = new FakeLink(receiveMaximum);
  session.attach(link);
  cursors.attach(session, 0, position);
  return { session, link };
}

const payloads = (link: FakeLink): string[] =>
  link.publishes.map((packet) => packet.payload.toString());

describe('MailboxCursors', () => {
  it("feeds a session its records in order, with ids from their offsets, and not others'", () => {
    const { cursors, partition } = setup();
    const a = connect(cursors, 'a');
    partition.append('a', 'a0');
    partition.append('b', 'b0');
    partition.append('a', 'a1');
    partition.pump();
    expect(payloads(a.link)).toEqual(['a0', 'a1']);
    expect(a.link.publishes.map((packet) => packet.messageId)).toEqual([
      packetIdFor(0n),
      packetIdFor(2n),
    ]);
    // acknowledged: the position moves past them (to the stream, being idle)
    a.session.acknowledge('puback', packetIdFor(0n));
    expect(cursors.position('a')?.next).toBe(2n);
    a.session.acknowledge('puback', packetIdFor(2n));
    expect(cursors.position('a')?.next).toBe(3n);
  });

  it('resumes from a stored position: reads the partition again, DUP on what may have been sent', () => {
    const { cursors, partition } = setup();
    const b = connect(cursors, 'b');
    for (const name of ['a0', 'b0', 'a1', 'b1', 'a2']) partition.append(name.slice(0, 1), name);
    partition.pump();
    expect(payloads(b.link)).toEqual(['b0', 'b1']);
    // a restart: 'a' had acknowledged nothing past offset 2
    const a = connect(cursors, 'a', { partition: 0, next: 2n, released: new Map() });
    expect(partition.seeks).toEqual([2n]);
    partition.pump();
    expect(payloads(a.link)).toEqual(['a1', 'a2']);
    expect(a.link.publishes.every((packet) => packet.dup)).toBe(true);
    // b got nothing twice
    expect(payloads(b.link)).toEqual(['b0', 'b1']);
    partition.append('a', 'a3');
    partition.pump();
    expect(a.link.publishes.at(-1)).toMatchObject({ dup: false });
  });

  it('stops feeding a session with many messages waiting, and goes on from there once it drains', () => {
    const { cursors, partition } = setup(3);
    // Receive Maximum 1: one in flight, the rest queue in the session
    const a = connect(cursors, 'a', undefined, 1);
    for (let index = 0; index < 20; index++) {
      partition.append('a', `a${index}`);
      partition.append('b', `b${index}`);
    }
    partition.pump();
    // 1 in flight + 3 queued, then stalled: not 20 in memory
    expect(a.session.queued).toBe(3);
    const acknowledged: string[] = [];
    for (let turn = 0; turn < 40 && acknowledged.length < 20; turn++) {
      const last = a.link.publishes.at(acknowledged.length);
      if (last === undefined) {
        partition.pump();
        continue;
      }
      acknowledged.push(last.payload.toString());
      a.session.acknowledge('puback', last.messageId ?? 0);
      partition.pump();
    }
    expect(acknowledged).toEqual(Array.from({ length: 20 }, (_, index) => `a${index}`));
    expect(partition.seeks.length).toBeGreaterThan(0);
  });

  it('keeps a QoS 2 release before PUBREL goes, and sends PUBREL again after a restart', () => {
    const { cursors, partition, changed } = setup();
    const a = connect(cursors, 'a');
    partition.append('a', 'q2', 2);
    partition.pump();
    const id = packetIdFor(0n);
    a.session.acknowledge('pubrec', id);
    // PUBREL waits for the release to be kept
    expect(a.link.sent.some((packet) => packet.cmd === 'pubrel')).toBe(false);
    const release = changed.find((change) => change.done !== undefined);
    expect(cursors.position('a')?.released).toEqual(new Map([[0n, id]]));
    release?.done?.();
    expect(a.link.sent.at(-1)).toEqual({ cmd: 'pubrel', messageId: id });

    // a restart before PUBCOMP: PUBREL again, the message is not sent again
    const position = cursors.position('a');
    const restarted = setup();
    restarted.partition.records.push(...partition.records);
    restarted.cursors.startAt(0, 1n);
    const again = connect(restarted.cursors, 'a', position);
    restarted.partition.pump();
    expect(again.link.sent).toEqual([{ cmd: 'pubrel', messageId: id }]);
    again.session.acknowledge('pubcomp', id);
    expect(restarted.cursors.position('a')).toMatchObject({ next: 1n, released: new Map() });
  });
});

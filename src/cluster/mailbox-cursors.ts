import type { Delivery, Session } from '../mqtt/session.js';
import type { MailboxPosition } from './session-record.js';

/** A session's messages (sessions.messagesTopic) fed to it while it is attached. */
interface Cursor {
  clientId: string;
  session: Session;
  partition: number;
  attached: boolean;
  /** Offset after the last record fed to the session (records before it are not fed again). */
  fed: bigint;
  /** Offsets fed and not yet done with (acknowledged, written at QoS 0, dropped). */
  pending: Set<bigint>;
  /** Of `pending`: QoS 2 records released (PUBREC came, PUBREL sent), by offset, with their id. */
  released: Map<bigint, number>;
  /** Waiting for the partition's records to come again from this offset (after a seek back). */
  syncFrom: bigint | undefined;
  /** The session had too many messages waiting: records are not fed until it drains. */
  stalled: boolean;
  /** Records before this offset may have been sent before a restart or reconnection: DUP. */
  resumeEnd: bigint;
}

/** What a record of the topic is, for feeding: the delivery without what the cursor adds. */
export type MailboxDelivery = Omit<Delivery, 'settle' | 'packetId' | 'dup' | 'released'>;

export interface CursorCallbacks {
  /** Reads the partition again from the offset: records from there come again, in order. */
  seek(partition: number, offset: bigint): void;
  /**
   * A session's position changed; `done` (when given) runs once it is kept — a release must be
   * kept before its PUBREL goes.
   */
  changed(clientId: string, done?: () => void): void;
}

/** The packet id a record is sent with: the same after a restart, so the client sees DUPs. */
export function packetIdFor(offset: bigint): number {
  return Number(offset % 65_535n) + 1;
}

/**
 * The reading side of the sessions' message topic, free of Kafka: the topic is read once per
 * bridge, partition by partition, and every record goes through `record()` in log order. A
 * session attached here gets its records (keyed by its client id) from its position on: when
 * that is behind the stream, the partition is read again from there (`seek`), and the records
 * other sessions already had are skipped by their own positions. A session with many messages
 * waiting stops being fed, and is fed again from where it stopped once it has drained, so memory
 * holds at most a few records per session while Kafka holds its backlog.
 */
export class MailboxCursors {
  readonly #callbacks: CursorCallbacks;
  readonly #feedLimit: number;
  readonly #cursors = new Map<string, Cursor>();
  /** Per partition: the offset of the next record the stream delivers (as far as known). */
  readonly #position = new Map<number, bigint>();

  constructor(callbacks: CursorCallbacks, feedLimit = 100) {
    this.#callbacks = callbacks;
    this.#feedLimit = feedLimit;
  }

  /** The stream of `partition` starts at `offset` (the end, when reading begins). */
  startAt(partition: number, offset: bigint): void {
    this.#position.set(partition, offset);
  }

  /** Per partition, the offset the stream reads next: where to read from after a restart. */
  positions(): ReadonlyMap<number, bigint> {
    return this.#position;
  }

  /**
   * The session has a connection: its records are fed from `position` (a stored one, after a
   * restart or a move), or go on from where they were (it was attached here before), or start
   * now (a new session).
   */
  attach(session: Session, partition: number, position: MailboxPosition | undefined): void {
    const { clientId } = session;
    const streamAt = this.#position.get(partition) ?? 0n;
    let cursor = this.#cursors.get(clientId);
    if (cursor === undefined || cursor.session !== session) {
      const next = position?.next ?? streamAt;
      cursor = {
        clientId,
        session,
        partition,
        attached: true,
        fed: next,
        pending: new Set(),
        released: new Map(),
        syncFrom: undefined,
        stalled: false,
        resumeEnd: streamAt,
      };
      this.#cursors.set(clientId, cursor);
      for (const [offset, packetId] of position?.released ?? []) {
        cursor.pending.add(offset);
        cursor.released.set(offset, packetId);
        session.restoreReleased(packetId, this.#settler(cursor, offset));
      }
    }
    cursor.attached = true;
    cursor.stalled = false;
    cursor.resumeEnd = streamAt;
    session.onQueueDrained = () => {
      this.#drained(session);
    };
    this.#syncFrom(cursor, cursor.fed);
  }

  /** The session's connection is gone: its records wait in Kafka. */
  detach(session: Session): void {
    const cursor = this.#cursors.get(session.clientId);
    if (cursor?.session === session) cursor.attached = false;
  }

  /** The session ended: its records are never fed. */
  forget(session: Session): void {
    if (this.#cursors.get(session.clientId)?.session === session) {
      this.#cursors.delete(session.clientId);
    }
  }

  /** The session a cursor feeds. */
  session(clientId: string): Session | undefined {
    return this.#cursors.get(clientId)?.session;
  }

  /** Where the session is in its messages, to keep (undefined: never attached here). */
  position(clientId: string): MailboxPosition | undefined {
    const cursor = this.#cursors.get(clientId);
    if (cursor === undefined) return undefined;
    let next = cursor.fed;
    for (const offset of cursor.pending) if (offset < next) next = offset;
    // attached, in step with the stream and done with everything: nothing before the stream
    // is for it any more
    const streamAt = this.#position.get(cursor.partition);
    const idle =
      cursor.attached &&
      cursor.pending.size === 0 &&
      cursor.syncFrom === undefined &&
      !cursor.stalled;
    if (idle && streamAt !== undefined && streamAt > next) next = streamAt;
    return { partition: cursor.partition, next, released: new Map(cursor.released) };
  }

  /** A record of the topic, in log order per partition; `decode` makes its delivery. */
  record(
    partition: number,
    offset: bigint,
    clientId: string | undefined,
    decode: () => MailboxDelivery | undefined,
  ): void {
    this.#position.set(partition, offset + 1n);
    for (const cursor of this.#cursors.values()) {
      // the seek back has taken effect for sessions waiting from this offset or later
      if (
        cursor.partition === partition &&
        cursor.syncFrom !== undefined &&
        offset <= cursor.syncFrom
      ) {
        cursor.syncFrom = undefined;
      }
    }
    const cursor = clientId === undefined ? undefined : this.#cursors.get(clientId);
    if (
      cursor === undefined ||
      cursor.partition !== partition ||
      !cursor.attached ||
      cursor.syncFrom !== undefined ||
      cursor.stalled ||
      offset < cursor.fed
    ) {
      return;
    }
    if (cursor.released.has(offset)) {
      // released before a restart: only its PUBREL goes again (restored at attach)
      cursor.fed = offset + 1n;
      return;
    }
    if (cursor.session.queued >= this.#feedLimit) {
      cursor.stalled = true;
      return;
    }
    cursor.fed = offset + 1n;
    const delivery = decode();
    if (delivery === undefined) return; // not readable: skipped (logged by the reader)
    cursor.pending.add(offset);
    const packetId = packetIdFor(offset);
    cursor.session.deliver({
      ...delivery,
      packetId,
      dup: offset < cursor.resumeEnd,
      settle: this.#settler(cursor, offset),
      released: (sendPubrel) => {
        cursor.released.set(offset, packetId);
        this.#callbacks.changed(cursor.clientId, sendPubrel);
      },
    });
  }

  /** Settles a record once: its offset is done with. */
  #settler(cursor: Cursor, offset: bigint): () => void {
    return () => {
      if (!cursor.pending.delete(offset)) return;
      cursor.released.delete(offset);
      this.#callbacks.changed(cursor.clientId);
    };
  }

  /** The session's queue emptied: a stalled session is fed again from where it stopped. */
  #drained(session: Session): void {
    const cursor = this.#cursors.get(session.clientId);
    if (cursor?.session !== session || !cursor.stalled) return;
    cursor.stalled = false;
    this.#syncFrom(cursor, cursor.fed);
  }

  /** The cursor needs the partition's records from `offset`: read it again from there if needed. */
  #syncFrom(cursor: Cursor, offset: bigint): void {
    const streamAt = this.#position.get(cursor.partition) ?? 0n;
    if (offset >= streamAt) {
      // the stream has not got there yet: the records come in their turn
      cursor.syncFrom = undefined;
      return;
    }
    cursor.syncFrom = offset;
    // never forward past another session still waiting on this partition
    let target = offset;
    for (const other of this.#cursors.values()) {
      if (other.partition === cursor.partition && other.syncFrom !== undefined) {
        if (other.syncFrom < target) target = other.syncFrom;
      }
    }
    this.#position.set(cursor.partition, target);
    this.#callbacks.seek(cursor.partition, target);
  }
}

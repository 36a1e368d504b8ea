import type { IConnectPacket } from 'mqtt-packet';
import type { Identity } from '../auth/identity.js';
import type { Delivery, Session, Subscription } from './session.js';

type Will = NonNullable<IConnectPacket['will']>;

/** Where a session is in its messages (sessions.messagesTopic, records keyed by client id). */
export interface MailboxPosition {
  partition: number;
  /** Offset of the first record not yet done with (acknowledged, written at QoS 0, dropped). */
  next: bigint;
  /**
   * QoS 2 records at or after `next` whose PUBREC came (PUBREL sent, PUBCOMP awaited): by offset,
   * the packet id they were sent with. On resume PUBREL goes again for them; they are not sent
   * again.
   */
  released: Map<bigint, number>;
}

/** What a session is, as a store keeps it. */
export interface SessionState {
  /** A connection of the owner serves it now; otherwise offline since `disconnectedAt`. */
  online: boolean;
  disconnectedAt: number | undefined;
  identity: Identity;
  assignedId: boolean;
  /** Seconds (NEVER_EXPIRES: for ever). */
  expiryInterval: number;
  subscriptions: ReadonlyMap<string, Subscription>;
  /** The will of the current or last connection, while it is not published. */
  will: Will | undefined;
  /** When a will waiting for its delay goes out (ms since the epoch); online: not set. */
  willAt: number | undefined;
  /** QoS 2 packet ids received, stored, and not yet released [MQTT-4.3.3-9]. */
  qos2Received: number[];
  mailbox: MailboxPosition | undefined;
}

/**
 * What is known of a session at CONNECT, before it is set up: what a claim writes for a session
 * new to the fleet, so that another bridge taking it over at once (before the first save) sees
 * its identity and expiry.
 */
export type FreshSession = Pick<SessionState, 'identity' | 'assignedId' | 'expiryInterval'>;

/**
 * Where sessions are kept beyond the broker's memory: the seam between the broker and a store
 * outside the process (sessions.store kafka). The broker calls it at session granularity
 * (connect, subscribe, disconnect, end) and, for sessions whose messages the store keeps, per
 * delivery; it never waits on it per message except where a guarantee needs it (a QoS 2 packet
 * id's state before PUBREC/PUBREL, a message kept before its publisher is acknowledged).
 */
export interface SessionStore {
  /**
   * Sessions outlive the process (a crash keeps them). Then the downlink lets go of a message
   * for a session that is not persistent once it is handed over: such a session ends with its
   * connection anyway, and a slow client must not hold back the downlink.
   */
  readonly keepsSessions: boolean;

  /**
   * Whether the session's messages are kept by the store (offline queue and in flight): they go
   * to `enqueue()` and the store feeds them to the session in order, rather than straight to
   * `Session.deliver()`.
   */
  keepsMessages(session: Session): boolean;

  /**
   * Makes this bridge the owner of the client id's session, before CONNACK. Undefined: nothing
   * to wait for. Otherwise resolves once it is, with what the store kept of the session when the
   * broker has none of its own (a session that moved here), and rejects with an Error when the
   * claim failed.
   */
  claim(clientId: string, fresh: FreshSession): Promise<SessionState | undefined> | undefined;

  /**
   * The session changed (subscriptions, expiry, will, QoS 2 packet ids, connected or not). Kept
   * soon; `done` runs once it is kept (at once for a store that keeps nothing).
   */
  save(session: Session, done?: () => void): void;

  /** The session ended: the store forgets it. */
  end(session: Session): void;

  /**
   * A message for a session whose messages the store keeps: `done(true)` once kept (it will be
   * fed to the session in order), `done(false)` when it could not be (dropped).
   */
  enqueue(session: Session, delivery: Delivery, done: (kept: boolean) => void): void;

  /** The session has a connection now: the messages it has not had are fed to it. */
  attach(session: Session): void;

  /** The session's connection is gone: its messages wait in the store. */
  detach(session: Session): void;
}

/** What a store shared by several bridges tells the broker of the fleet's sessions. */
export interface FleetEvents {
  /** Another bridge owns the client id's session now (a takeover there): let it go here. */
  lostSession(clientId: string): void;
  /** A session owned by another bridge, new or changed. */
  remoteSession(clientId: string, state: SessionState): void;
  /** A session owned by another bridge ended. */
  remoteEnded(clientId: string): void;
  /** A session of a bridge that is gone is this bridge's now, offline. */
  adopted(clientId: string, state: SessionState): void;
}

/** Keeps nothing: sessions live in the broker's memory only (sessions.store memory). */
export class MemorySessionStore implements SessionStore {
  readonly keepsSessions = false;

  keepsMessages(): boolean {
    return false;
  }

  claim(): undefined {
    return undefined;
  }

  save(_session: Session, done?: () => void): void {
    done?.();
  }

  end(): void {
    // nothing kept
  }

  enqueue(_session: Session, _delivery: Delivery, done: (kept: boolean) => void): void {
    done(false);
  }

  attach(): void {
    // nothing kept
  }

  detach(): void {
    // nothing kept
  }
}

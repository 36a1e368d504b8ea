import type { Delivery, Session } from './session.js';

/**
 * Where sessions are kept beyond the broker's memory: the seam between the broker and a store
 * outside the process (sessions.store kafka). The broker calls it at session granularity
 * (connect, subscribe, disconnect, end) and, for sessions whose messages the store keeps, per
 * delivery; it never waits on it per message except where a guarantee needs it (a QoS 2 packet
 * id's state before PUBREC/PUBREL, a message kept before its publisher is acknowledged).
 */
export interface SessionStore {
  /**
   * Whether the session's QoS 1/2 messages are kept by the store (offline queue and in flight):
   * they go to `enqueue()` and come back through `SessionStoreTarget.feed()`, rather than
   * straight to `Session.deliver()`.
   */
  keepsMessages(session: Session): boolean;

  /**
   * Makes this bridge the owner of the client id's session, before CONNACK. Resolves once it is
   * (rejects with an Error when the store cannot be written).
   */
  claim(clientId: string): Promise<void>;

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

  /** Stops the store (after the broker stopped taking connections); what is unsaved is saved. */
  close(): Promise<void>;
}

/** Keeps nothing: sessions live in the broker's memory only (sessions.store memory). */
export class MemorySessionStore implements SessionStore {
  keepsMessages(): boolean {
    return false;
  }

  claim(): Promise<void> {
    return Promise.resolve();
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

  close(): Promise<void> {
    return Promise.resolve();
  }
}

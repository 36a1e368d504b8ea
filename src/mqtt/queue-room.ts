import { Waiters } from '../waiters.js';

/**
 * The connected sessions whose queue is full (`mqtt.maxQueuedMessages`), so that the downlink
 * can wait for them to take messages instead of overflowing their queues. A session that takes
 * nothing for `patienceMs` is stalled: it no longer holds anyone up, and what overflows its
 * queue is dropped and counted, as for any full queue.
 */
export class QueueRoom {
  readonly #patienceMs: number;
  /** Full sessions, with when each last took a message from its queue (or filled it). */
  readonly #full = new Map<object, number>();
  readonly #waiters = new Waiters();

  constructor(patienceMs: number) {
    this.#patienceMs = patienceMs;
  }

  /** Whether no session is full: nothing to wait for. */
  get empty(): boolean {
    return this.#full.size === 0;
  }

  /** The session's queue is full while its client is connected. */
  filled(session: object): void {
    if (this.#patienceMs > 0 && !this.#full.has(session)) this.#full.set(session, Date.now());
  }

  /** The full session took a message from its queue: it is not stalled. */
  took(session: object): void {
    if (this.#full.has(session)) this.#full.set(session, Date.now());
  }

  /** The session's queue has room again, or its client left, or it ended. */
  freed(session: object): void {
    if (!this.#full.delete(session)) return;
    this.#waiters.wakeAll();
  }

  /** Whether a message for `session` would overflow a queue that is still being taken from. */
  holdsUp(session: object): boolean {
    const tookAt = this.#full.get(session);
    return tookAt !== undefined && Date.now() - tookAt < this.#patienceMs;
  }

  /** Resolves once a full session has room again, or after `ms` (a stalled one is then let go). */
  whenFreed(ms: number): Promise<void> {
    return this.#waiters.wait(ms);
  }
}

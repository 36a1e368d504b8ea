/** Who wrote a session record: the instance that owned the session then, and its epoch. */
export interface Ownership {
  owner: string;
  epoch: number;
}

interface Latest extends Ownership {
  ended: boolean;
  /** When the session ended (ms since the epoch); 0 while it lasts. */
  endedAt: number;
}

/**
 * The fencing rules of the sessions topic, applied by every reader to every record in log
 * order. A session's records carry the instance that owns it and an epoch that grows with each
 * takeover:
 *
 * - a record of a higher epoch than the last one applied wins (a takeover);
 * - a record of the same epoch applies only when the same owner wrote it (its updates);
 * - anything else is a stale owner's late write (an old instance that had not yet seen the
 *   takeover): ignored, whatever it is — an update, an end, a tombstone.
 *
 * So of two instances claiming a session with the same epoch at once, the first claim in the
 * log wins, and both learn it by reading on. The epochs of ended sessions are remembered for a
 * while (`forgetEndedBefore`), so a late write cannot bring an ended session back either.
 */
export class SessionFencing {
  readonly #latest = new Map<string, Latest>();

  /** Whether a record written with this ownership is to be applied. */
  accepts(clientId: string, incoming: Ownership): boolean {
    const latest = this.#latest.get(clientId);
    if (latest === undefined || incoming.epoch > latest.epoch) return true;
    return incoming.epoch === latest.epoch && incoming.owner === latest.owner;
  }

  /**
   * Applies a record if the rules accept it: `ended` for an end (or tombstone). Returns whether
   * it was applied.
   */
  apply(clientId: string, incoming: Ownership, ended: boolean, now = Date.now()): boolean {
    if (!this.accepts(clientId, incoming)) return false;
    this.#latest.set(clientId, { ...incoming, ended, endedAt: ended ? now : 0 });
    return true;
  }

  /** The ownership last applied for a client id (also of an ended session). */
  latest(clientId: string): (Ownership & { ended: boolean }) | undefined {
    const latest = this.#latest.get(clientId);
    return latest && { owner: latest.owner, epoch: latest.epoch, ended: latest.ended };
  }

  /** The epoch a new claim of the client id takes: one above any seen. */
  nextEpoch(clientId: string): number {
    return (this.#latest.get(clientId)?.epoch ?? 0) + 1;
  }

  /** Forgets sessions that ended before `time`: their late writes are long past. */
  forgetEndedBefore(time: number): void {
    for (const [clientId, latest] of this.#latest) {
      if (latest.ended && latest.endedAt < time) this.#latest.delete(clientId);
    }
  }

  get size(): number {
    return this.#latest.size;
  }
}

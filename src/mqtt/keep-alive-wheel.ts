/** What the wheel checks: a connection whose client must have sent something by a deadline. */
export interface KeepAliveWatched {
  /** The wheel's slot it is in (-1: none); the wheel's own bookkeeping. */
  keepAliveSlot: number;
  /** Its deadline has come (`now`: Date.now()): it closes, or is added again with a later one. */
  keepAliveDue(now: number): void;
}

/** Granularity of the deadlines: a silent client is closed at most this much late. */
const TICK_MS = 250;

/**
 * Slots count from a year before the wheel was made: small integers (a slot number from the
 * epoch would not fit V8's small integers, and each connection would hold it in a heap number of
 * its own), and never below 0 while the clock is not set back more than that.
 */
const ORIGIN_BEFORE_MS = 365 * 24 * 3_600_000;

/**
 * The keep-alive deadlines of all connections on one timer, in slots of TICK_MS: no timer, timer
 * callback or closure per connection (they were about a fifth of an idle connection's heap).
 * A deadline is rounded up to its slot's end, so a client is never closed early.
 */
export class KeepAliveWheel {
  /** Connections by the slot (TICK_MS from #origin, rounded up) their deadline falls in. */
  readonly #slots = new Map<number, Set<KeepAliveWatched>>();
  readonly #origin = Date.now() - ORIGIN_BEFORE_MS;
  /** The first slot not checked yet. */
  #next = this.#slotAt(Date.now());
  #timer: NodeJS.Timeout | undefined;

  /** Checks `watched` at `deadline` (Date.now() time), instead of any deadline it had. */
  add(watched: KeepAliveWatched, deadline: number): void {
    this.remove(watched);
    // after a time without any: the slots of that time were empty
    if (this.#timer === undefined) this.#next = Math.max(this.#next, this.#slotAt(Date.now()));
    // rounded up: the first slot checked at the deadline or after it
    const slot = Math.max(Math.ceil((deadline - this.#origin) / TICK_MS), this.#next);
    let members = this.#slots.get(slot);
    if (!members) {
      members = new Set();
      this.#slots.set(slot, members);
    }
    members.add(watched);
    watched.keepAliveSlot = slot;
    this.#timer ??= setInterval(() => {
      this.#tick(Date.now());
    }, TICK_MS).unref();
  }

  remove(watched: KeepAliveWatched): void {
    const slot = watched.keepAliveSlot;
    if (slot < 0) return;
    watched.keepAliveSlot = -1;
    const members = this.#slots.get(slot);
    if (!members) return;
    members.delete(watched);
    if (members.size === 0) this.#slots.delete(slot);
  }

  /** Stops the timer (the broker is closing). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#slots.clear();
  }

  /** The slot `time` (Date.now() time) falls in. */
  #slotAt(time: number): number {
    return Math.max(0, Math.floor((time - this.#origin) / TICK_MS));
  }

  #tick(now: number): void {
    const last = this.#slotAt(now);
    while (this.#next <= last) {
      const members = this.#slots.get(this.#next);
      if (!members) {
        this.#next++;
        continue;
      }
      const slot = this.#next;
      this.#slots.delete(slot);
      for (const watched of members) {
        // removed (or moved) by an earlier one's closing
        if (watched.keepAliveSlot !== slot) continue;
        watched.keepAliveSlot = -1;
        watched.keepAliveDue(now);
      }
    }
    if (this.#slots.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}

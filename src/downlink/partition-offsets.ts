/**
 * The offsets of one partition's records that were handed to the broker, and
 * which of them are settled. Kafka stores one committed offset per partition,
 * "everything before this is done", so the offset that may be committed is
 * that of the oldest record not settled yet: a record waiting for an offline
 * device holds back the commit (and is consumed again after a restart) but
 * not the records behind it, which are delivered meanwhile.
 *
 * Offsets stay the decimal strings KafkaJS gives (int64: beyond a number's
 * precision); records come in offset order, so the ones handed over form a
 * queue, settled in place and shed from its front when a commit looks.
 */
interface Tracked {
  readonly offset: string;
  settled: boolean;
}

/** Entries shed from the queue's front before it is copied down. */
const COMPACT_AFTER = 1024;

export class PartitionOffsets {
  /** Handed over, in offset order; those before `#head` are settled and shed. */
  #queue: Tracked[] = [];
  #head = 0;
  #pending = 0;
  /** The newest offset handed over. */
  #last: string | undefined;
  /** The last offset given to `committable`. */
  #committed: string | undefined;

  get pendingCount(): number {
    return this.#pending;
  }

  /** Whether this record was handed over already (it comes again after a rebalance). */
  handedOver(offset: string): boolean {
    return this.#last !== undefined && !isAfter(offset, this.#last);
  }

  /** A record was handed over; the returned function settles it (extra calls do nothing). */
  track(offset: string): () => void {
    const tracked: Tracked = { offset, settled: false };
    this.#queue.push(tracked);
    this.#last = offset;
    this.#pending++;
    return () => {
      if (tracked.settled) return;
      tracked.settled = true;
      this.#pending--;
    };
  }

  /** The offset to commit if it moved since the last call, else undefined. */
  committable(): string | undefined {
    if (this.#last === undefined) return undefined;
    const queue = this.#queue;
    let head = this.#head;
    while (head < queue.length && (queue[head] as Tracked).settled) head++;
    const offset = queue[head]?.offset ?? (BigInt(this.#last) + 1n).toString();
    if (head >= COMPACT_AFTER || head === queue.length) {
      this.#queue = queue.slice(head);
      head = 0;
    }
    this.#head = head;
    if (offset === this.#committed) return undefined;
    this.#committed = offset;
    return offset;
  }
}

/** Whether decimal offset `a` is greater than `b` (no signs, no leading zeros, as Kafka writes them). */
function isAfter(a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b;
}

/**
 * The offsets of one partition's records that were handed to the broker, and
 * which of them are settled. Kafka stores one committed offset per partition,
 * "everything before this is done", so the offset that may be committed is
 * that of the oldest record not settled yet: a record waiting for an offline
 * device holds back the commit (and is consumed again after a restart) but
 * not the records behind it, which are delivered meanwhile.
 */
export class PartitionOffsets {
  /** Offsets handed over and not settled, oldest first (insertion order = offset order). */
  readonly #pending = new Set<bigint>();
  /** The offset after the newest record handed over. */
  #next: bigint | undefined;
  /** The last offset given to `committable`. */
  #committed: bigint | undefined;

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Whether this record was handed over already (it comes again after a rebalance). */
  handedOver(offset: string): boolean {
    return this.#next !== undefined && BigInt(offset) < this.#next;
  }

  /** A record was handed over; the returned function settles it (extra calls do nothing). */
  track(offset: string): () => void {
    const value = BigInt(offset);
    this.#pending.add(value);
    this.#next = value + 1n;
    return () => {
      this.#pending.delete(value);
    };
  }

  /** The offset to commit if it moved since the last call, else undefined. */
  committable(): string | undefined {
    if (this.#next === undefined) return undefined;
    const oldest: bigint | undefined = this.#pending.values().next().value;
    const offset = oldest ?? this.#next;
    if (offset === this.#committed) return undefined;
    this.#committed = offset;
    return offset.toString();
  }
}

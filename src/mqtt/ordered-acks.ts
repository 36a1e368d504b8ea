/**
 * Acknowledgements leave in the order their PUBLISHes arrived
 * [MQTT-4.6.0-2], even when Kafka settles a later one first (for example a
 * publish that matched no rule is settled at once).
 */
export class OrderedAcks<T> {
  readonly #slots: Array<{ value: T | undefined; settled: boolean }> = [];
  #head = 0;
  readonly #write: (value: T) => void;

  constructor(write: (value: T) => void) {
    this.#write = write;
  }

  /** Acknowledgements reserved and not yet written. */
  get pending(): number {
    return this.#slots.length - this.#head;
  }

  /** Reserves the next place in line; call the returned function once to settle it. */
  reserve(): (value: T) => void {
    const slot: { value: T | undefined; settled: boolean } = { value: undefined, settled: false };
    this.#slots.push(slot);
    return (value: T) => {
      slot.value = value;
      slot.settled = true;
      this.#drain();
    };
  }

  #drain(): void {
    while (this.#head < this.#slots.length) {
      const slot = this.#slots[this.#head] as { value: T | undefined; settled: boolean };
      if (!slot.settled) break;
      this.#head++;
      this.#write(slot.value as T);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#slots.length) {
      this.#slots.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

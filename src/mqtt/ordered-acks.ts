/** A place in line not settled yet. */
const UNSETTLED: unique symbol = Symbol('unsettled');

/** What writes the acknowledgements of an OrderedAcks. */
export interface AckWriter<T> {
  writeAck(value: T): void;
}

/**
 * Acknowledgements leave in the order their PUBLISHes arrived
 * [MQTT-4.6.0-2], even when Kafka settles a later one first (for example a
 * publish that matched no rule is settled at once).
 *
 * A place in line is a ticket (a number): `take` one, `settle` it once with what to write. No
 * object or closure per acknowledgement.
 */
export class OrderedAcks<T> {
  /** Values of the places from `#head` on (settled, or UNSETTLED); before it: written. */
  #values: Array<T | typeof UNSETTLED | undefined> = [];
  #head = 0;
  /** The ticket of `#values[0]`. */
  #base = 0;
  readonly #writer: AckWriter<T>;

  /** `writer` writes each value in order (an object with a method: no closure per connection). */
  constructor(writer: AckWriter<T>) {
    this.#writer = writer;
  }

  /** Acknowledgements reserved and not yet written. */
  get pending(): number {
    return this.#values.length - this.#head;
  }

  /** Takes the next place in line; `settle` it once. */
  take(): number {
    this.#values.push(UNSETTLED);
    return this.#base + this.#values.length - 1;
  }

  /** Settles a place in line: its value is written once every place before it was. */
  settle(ticket: number, value: T): void {
    const index = ticket - this.#base;
    if (index < this.#head || this.#values[index] !== UNSETTLED) return;
    this.#values[index] = value;
    if (index === this.#head) this.#drain();
  }

  /** Reserves the next place in line; call the returned function once to settle it. */
  reserve(): (value: T) => void {
    const ticket = this.take();
    return (value: T) => {
      this.settle(ticket, value);
    };
  }

  #drain(): void {
    while (this.#head < this.#values.length) {
      const value = this.#values[this.#head];
      if (value === UNSETTLED) break;
      this.#values[this.#head] = undefined;
      this.#head++;
      this.#writer.writeAck(value as T);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#values.length) {
      this.#values.splice(0, this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
  }
}

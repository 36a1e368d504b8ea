/**
 * `mqtt.maxPublishRate` of one connection: a token bucket holding one second of publishes.
 * A publish beyond it puts the bucket in debt; the debt says how long the connection must not
 * be read for the rate to hold again.
 */
export class PublishRate {
  readonly #perSecond: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  /** `now`: milliseconds of a clock that never goes back. */
  constructor(perSecond: number, now: () => number = () => performance.now()) {
    this.#perSecond = perSecond;
    this.#now = now;
    this.#tokens = perSecond;
    this.#at = now();
  }

  /** Counts one publish: 0 while within the rate, else the milliseconds until it is again. */
  take(): number {
    this.#refill();
    this.#tokens -= 1;
    return this.debtMs();
  }

  /** Milliseconds until the publishes counted are within the rate again (0: they are). */
  debtMs(): number {
    this.#refill();
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / this.#perSecond);
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(
      this.#perSecond,
      this.#tokens + ((now - this.#at) * this.#perSecond) / 1000,
    );
    this.#at = now;
  }
}

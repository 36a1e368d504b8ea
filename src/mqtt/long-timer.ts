/** Node's setTimeout fires at once for delays above this (about 24.8 days). */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** A one-shot timer for any delay: longer ones are re-armed in steps Node accepts. */
export class LongTimer {
  #timer: NodeJS.Timeout | undefined;

  constructor(delayMs: number, callback: () => void) {
    this.#arm(Date.now() + delayMs, callback);
  }

  cancel(): void {
    clearTimeout(this.#timer);
  }

  #arm(deadline: number, callback: () => void): void {
    const left = deadline - Date.now();
    this.#timer = setTimeout(
      () => {
        if (deadline - Date.now() > 0 && left > MAX_DELAY_MS) this.#arm(deadline, callback);
        else callback();
      },
      Math.max(0, Math.min(left, MAX_DELAY_MS)),
    );
  }
}

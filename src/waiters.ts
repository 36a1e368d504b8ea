/** Callers waiting for something to change, each for at most a time of its own; woken together. */
export class Waiters {
  #waiting: Array<() => void> = [];

  /** Resolves at the next `wakeAll`, or after `ms`, whichever comes first. */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiting = this.#waiting.filter((waiter) => waiter !== wake);
        resolve();
      }, ms);
      this.#waiting.push(wake);
    });
  }

  wakeAll(): void {
    for (const wake of this.#waiting.splice(0)) wake();
  }
}

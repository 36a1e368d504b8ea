/**
 * Runs reloads one after another: a reload asked for while one runs joins the single next one,
 * which starts when the current one is over (and so reads the files afresh). The reloads given
 * never reject.
 */
export class ReloadQueue<T> {
  /** The reload running (or the last one). */
  #current: Promise<unknown> = Promise.resolve();
  /** The reload waiting for the current one: later requests join it. */
  #next: Promise<T> | undefined;

  request(reload: () => Promise<T>): Promise<T> {
    if (this.#next !== undefined) return this.#next;
    const next = this.#current.then(() => {
      this.#next = undefined;
      return reload();
    });
    this.#next = next;
    this.#current = next;
    return next;
  }

  /** Resolves once no reload runs or waits. */
  async settled(): Promise<void> {
    await this.#current;
  }
}

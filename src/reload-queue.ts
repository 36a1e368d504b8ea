/** How long the files must stay quiet before a change is loaded: editors write in several steps. */
const DEFAULT_QUIET_MS = 200;

/**
 * Runs reloads one after another: a reload asked for while one runs joins the single next one,
 * which starts when the current one is over (and so reads the files afresh). A file change asks
 * for one once the files have been quiet for a while. The reloads given never reject.
 */
export class ReloadQueue<T> {
  readonly #quietMs: number;
  /** The reload running (or the last one). */
  #current: Promise<unknown> = Promise.resolve();
  /** The reload waiting for the current one: later requests join it. */
  #next: Promise<T> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(quietMs = DEFAULT_QUIET_MS) {
    this.#quietMs = quietMs;
  }

  /** After close(): no more reloads. */
  get closed(): boolean {
    return this.#closed;
  }

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

  /** A file changed: `reload` once nothing more changed for the quiet time. */
  afterQuiet(reload: () => unknown): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(reload, this.#quietMs);
    this.#timer.unref();
  }

  /** No more reloads; resolves once the one in progress (if any) is over. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#current;
  }
}

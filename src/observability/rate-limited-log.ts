import type { Logger } from './logger.js';

/** At most one line per cause and interval; the lines left out are counted in the next one. */
export class RateLimitedLog {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #causes = new Map<string, { loggedAt: number; suppressed: number }>();

  constructor(log: Logger, intervalMs = 60_000) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  warn(cause: string, fields: Record<string, unknown>, message: string): void {
    this.log('warn', cause, fields, message);
  }

  log(
    level: 'error' | 'warn' | 'info' | 'debug',
    cause: string,
    fields: Record<string, unknown>,
    message: string,
  ): void {
    const now = Date.now();
    const seen = this.#causes.get(cause);
    if (seen && now - seen.loggedAt < this.#intervalMs) {
      seen.suppressed++;
      return;
    }
    this.#log[level]({ ...fields, cause, suppressed: seen?.suppressed ?? 0 }, message);
    this.#causes.set(cause, { loggedAt: now, suppressed: 0 });
  }
}

import { isIPv4, isIPv6 } from 'node:net';

/*
 * Failed authentications slowed per remote address. After `freeFailures` failures from an
 * address, each attempt from it waits before its credentials are checked, whatever their outcome
 * (so that a quick answer does not give a right guess away): `baseDelayMs`, doubling with each
 * further failure up to `maxDelayMs`. Attempts made in parallel take turns, one per delay. A
 * success, or `quietMs` without failure, starts the address afresh. At most `maxAddresses` are
 * remembered, the least recently seen forgotten first, so a scan from many addresses costs
 * bounded memory.
 */

export interface AuthThrottleOptions {
  /** Failures from an address answered without delay. */
  freeFailures: number;
  /** Wait of the first attempt after the free failures. */
  baseDelayMs: number;
  /** Longest wait; 0 turns the delays off (failures are still counted and logged). */
  maxDelayMs: number;
  /** Time without failure after which an address starts afresh. */
  quietMs: number;
  /** Addresses remembered at most. */
  maxAddresses: number;
  /** An address's failures are reported at most once per this interval. */
  logIntervalMs: number;
  now: () => number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = {
  freeFailures: 3,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  quietMs: 10 * 60_000,
  maxAddresses: 10_000,
  logIntervalMs: 60_000,
  now: Date.now,
};

/** What to log about an address's failures (at most once per logIntervalMs). */
export interface FailureReport {
  address: string;
  /** Failures since the last report of this address (this one included). */
  failures: number;
  /** Failures in a row, without success or quiet period. */
  inARow: number;
  /** The wait of the address's next attempt. */
  delayMs: number;
}

interface Entry {
  failures: number;
  lastFailureAt: number;
  /** Earliest start of the next attempt's check. */
  nextAt: number;
  loggedAt: number | undefined;
  unreported: number;
}

export class AuthThrottle {
  readonly #options: AuthThrottleOptions;
  /** In order of last use: the first is the one to forget. */
  readonly #entries = new Map<string, Entry>();

  constructor(options: Partial<AuthThrottleOptions> = {}) {
    this.#options = { ...DEFAULT_AUTH_THROTTLE, ...options };
  }

  /** Addresses remembered. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Milliseconds an attempt from `address` (see addressKey) waits before its credentials are
   * checked; its turn is taken, so parallel attempts wait one after the other.
   */
  delay(address: string): number {
    const entry = this.#get(address, false);
    if (entry === undefined) return 0;
    const step = this.#step(entry.failures);
    if (step === 0) return 0;
    const now = this.#options.now();
    const start = Math.max(now, entry.nextAt);
    const wait = start - now;
    if (wait >= this.#options.maxDelayMs) return this.#options.maxDelayMs;
    entry.nextAt = start + step;
    return wait;
  }

  /** An attempt from `address` failed; returns what to log when a report is due. */
  failed(address: string): FailureReport | undefined {
    const entry = this.#get(address, true) as Entry;
    const now = this.#options.now();
    entry.failures++;
    entry.lastFailureAt = now;
    entry.unreported++;
    const step = this.#step(entry.failures);
    entry.nextAt = Math.max(entry.nextAt, now + step);
    if (entry.loggedAt !== undefined && now - entry.loggedAt < this.#options.logIntervalMs) {
      return undefined;
    }
    entry.loggedAt = now;
    const report = {
      address,
      failures: entry.unreported,
      inARow: entry.failures,
      delayMs: Math.min(entry.nextAt - now, this.#options.maxDelayMs),
    };
    entry.unreported = 0;
    return report;
  }

  /** An attempt from `address` succeeded: no more waiting (the log interval still holds). */
  succeeded(address: string): void {
    const entry = this.#entries.get(address);
    if (entry === undefined) return;
    entry.failures = 0;
    entry.nextAt = 0;
  }

  /** Delay after `failures` failures in a row. */
  #step(failures: number): number {
    const { freeFailures, baseDelayMs, maxDelayMs } = this.#options;
    if (failures < freeFailures || maxDelayMs === 0) return 0;
    return Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(failures - freeFailures, 30));
  }

  /** The entry of `address`, moved to the end (most recently used); created when asked. */
  #get(address: string, create: boolean): Entry | undefined {
    const now = this.#options.now();
    let entry = this.#entries.get(address);
    if (entry !== undefined) {
      this.#entries.delete(address);
      if (now - entry.lastFailureAt >= this.#options.quietMs) {
        entry.failures = 0;
        entry.nextAt = 0;
      }
    } else if (create) {
      entry = { failures: 0, lastFailureAt: now, nextAt: 0, loggedAt: undefined, unreported: 0 };
    } else {
      return undefined;
    }
    this.#entries.set(address, entry);
    while (this.#entries.size > this.#options.maxAddresses) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
    return entry;
  }
}

const IPV4_AND_PORT = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}):\d+$/;

/**
 * The key an address is throttled by, from a connection's `host:port` (or a bare host): an IPv4
 * address (also when mapped into IPv6), or the /64 network of an IPv6 address, since one
 * machine commonly has a whole /64.
 */
export function addressKey(remote: string): string {
  // the common case, IPv4 `host:port`, without the IPv6 grammar
  const ipv4 = IPV4_AND_PORT.exec(remote);
  if (ipv4?.[1] !== undefined) return ipv4[1];
  let host = remote;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(remote);
  if (bracketed?.[1] !== undefined) host = bracketed[1];
  else if (!isIPv4(remote) && !isIPv6(remote)) host = remote.replace(/:\d+$/, '');
  host = host.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!isIPv6(host)) return host;
  return `${ipv6Groups(host).slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, without leading zeros. */
function ipv6Groups(address: string): string[] {
  let text = address.toLowerCase();
  const embedded = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (embedded) {
    const [a, b, c, d] = embedded.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, embedded.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros =
    tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => Number.parseInt(group, 16).toString(16));
}

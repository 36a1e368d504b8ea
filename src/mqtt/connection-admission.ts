import type { Limit } from './limit-refusals.js';

/**
 * Connection floods bounded when a socket is accepted: open connections in all (every
 * listener), open connections per remote address, and new connections a second per address.
 * Addresses are keys of addressKey (an IPv4 address, or an IPv6 /64). The counts are this
 * process's: the workers of `start --workers N` count each their own.
 */

export interface ConnectionLimits {
  /** Connections open at once (`mqtt.maxConnections`). */
  maxConnections: number;
  /** Connections open at once from one address; 0: no limit (`mqtt.maxConnectionsPerAddress`). */
  maxConnectionsPerAddress: number;
  /**
   * New connections a second from one address, in bursts of up to one second's worth; 0: no
   * limit (`mqtt.maxConnectRate`).
   */
  maxConnectRate: number;
}

/** The limits a new connection may be refused by. */
export type AdmissionLimit = Extract<
  Limit,
  'mqtt.maxConnections' | 'mqtt.maxConnectionsPerAddress' | 'mqtt.maxConnectRate'
>;

export interface AdmissionOptions {
  /** Addresses whose connection rate is remembered at most (the least recently seen forgotten). */
  maxAddresses: number;
  /** Milliseconds of a clock that never goes back (a wall clock set back would stall the rate). */
  now: () => number;
}

const DEFAULT_OPTIONS: AdmissionOptions = {
  maxAddresses: 10_000,
  now: () => performance.now(),
};

/** Connections an address may open now (fractions build up), and when that was reckoned. */
interface Bucket {
  tokens: number;
  at: number;
}

export class ConnectionAdmission {
  readonly #limits: ConnectionLimits;
  readonly #options: AdmissionOptions;
  #open = 0;
  /** Only addresses with connections open (none kept when the limit is off). */
  readonly #openByAddress = new Map<string, number>();
  /** Token buckets of the rate, in order of last use: the first is the one to forget. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(limits: ConnectionLimits, options: Partial<AdmissionOptions> = {}) {
    this.#limits = limits;
    this.#options = { ...DEFAULT_OPTIONS, ...options };
  }

  /**
   * A socket from `address` was accepted: undefined when it is admitted (it holds its slots until
   * release()), else the limit that refuses it. A refused connection takes nothing: neither a
   * slot nor a share of the rate. The most specific limit is named: the address's rate, then
   * its connections, then all connections.
   */
  admit(address: string): AdmissionLimit | undefined {
    const { maxConnections, maxConnectionsPerAddress } = this.#limits;
    const bucket = this.#bucket(address);
    if (bucket !== undefined && bucket.tokens < 1) return 'mqtt.maxConnectRate';
    const fromAddress = this.#openByAddress.get(address) ?? 0;
    if (maxConnectionsPerAddress > 0 && fromAddress >= maxConnectionsPerAddress) {
      return 'mqtt.maxConnectionsPerAddress';
    }
    if (this.#open >= maxConnections) return 'mqtt.maxConnections';
    if (bucket !== undefined) bucket.tokens -= 1;
    this.#open++;
    if (maxConnectionsPerAddress > 0) this.#openByAddress.set(address, fromAddress + 1);
    return undefined;
  }

  /** An admitted connection's socket is gone: its slots are free (call once per admission). */
  release(address: string): void {
    this.#open--;
    const fromAddress = this.#openByAddress.get(address);
    if (fromAddress === undefined) return;
    if (fromAddress <= 1) this.#openByAddress.delete(address);
    else this.#openByAddress.set(address, fromAddress - 1);
  }

  /**
   * The rate bucket of `address`, refilled up to now and made the most recently used; undefined
   * when the rate is not limited. An address not remembered starts with a full bucket.
   */
  #bucket(address: string): Bucket | undefined {
    const rate = this.#limits.maxConnectRate;
    if (rate === 0) return undefined;
    const now = this.#options.now();
    let bucket = this.#buckets.get(address);
    if (bucket === undefined) {
      bucket = { tokens: rate, at: now };
    } else {
      this.#buckets.delete(address);
      bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) * rate) / 1000);
      bucket.at = now;
    }
    this.#buckets.set(address, bucket);
    if (this.#buckets.size > this.#options.maxAddresses) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done !== true) this.#buckets.delete(oldest.value);
    }
    return bucket;
  }
}

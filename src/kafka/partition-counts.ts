import type { Admin } from 'kafkajs';

/** How long a topic's partition count is trusted before it is fetched again (in the background). */
const DEFAULT_TTL_MS = 60_000;
/** How long a failed lookup (topic missing, Kafka unreachable) stands before the next one. */
const FAILURE_TTL_MS = 5_000;
/**
 * Topics remembered at most (names can come from devices, through templated topics): beyond,
 * the oldest lookups are forgotten and made again when needed.
 */
const MAX_TOPICS = 10_000;

interface Entry {
  /** Null: the last lookup failed (no such topic, Kafka unreachable); `error` says why. */
  count: number | null;
  error: string | undefined;
  /** The last lookup found that Kafka has no such topic. */
  missing: boolean;
  fetchedAt: number;
  /** Lookups that failed since the count was last known (a known count outlives one). */
  failures: number;
}

/**
 * Partition counts of Kafka topics, from the admin client's metadata, cached. A count older than
 * the TTL is still answered while a fresh one is fetched, so only a topic's first lookup waits.
 */
export class PartitionCounts {
  readonly #admin: Admin;
  readonly #ttlMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #fetching = new Map<string, Promise<void>>();
  #connected: Promise<void> | undefined;

  constructor(admin: Admin, ttlMs = DEFAULT_TTL_MS) {
    this.#admin = admin;
    this.#ttlMs = ttlMs;
  }

  /**
   * The partition count of `topic` if known (null when its last lookup failed), or undefined
   * when it was never looked up: then `fetch` it.
   */
  cached(topic: string): number | null | undefined {
    const entry = this.#entries.get(topic);
    if (entry === undefined) return undefined;
    const ttl = entry.count === null ? Math.min(FAILURE_TTL_MS, this.#ttlMs) : this.#ttlMs;
    if (Date.now() - entry.fetchedAt > ttl) void this.fetch(topic);
    return entry.count;
  }

  /** Whether the last lookup of `topic` found that Kafka has no such topic. */
  missing(topic: string): boolean {
    return this.#entries.get(topic)?.missing ?? false;
  }

  /** Why the last lookup of `topic` failed. */
  error(topic: string): string | undefined {
    return this.#entries.get(topic)?.error;
  }

  /** Looks `topic` up (once at a time); never rejects: a failure is cached as a null count. */
  fetch(topic: string): Promise<void> {
    let fetching = this.#fetching.get(topic);
    if (fetching === undefined) {
      fetching = this.#lookUp(topic).finally(() => this.#fetching.delete(topic));
      this.#fetching.set(topic, fetching);
    }
    return fetching;
  }

  async close(): Promise<void> {
    if (this.#connected === undefined) return;
    await this.#connected.catch(() => undefined);
    await this.#admin.disconnect();
  }

  /** Connects the admin client on first use; a failed attempt is retried by the next lookup. */
  #connect(): Promise<void> {
    this.#connected ??= this.#admin.connect().catch((error: unknown) => {
      this.#connected = undefined;
      throw error;
    });
    return this.#connected;
  }

  /**
   * One lookup. A failure keeps a count known before, once: a refresh fails for a whole topic
   * when one of its partitions has no leader (KafkaJS refuses the metadata), and a broker whose
   * metadata lags may not know a topic yet; neither means the partitions are gone. A second
   * failure in a row stands.
   */
  async #lookUp(topic: string): Promise<void> {
    const fetchedAt = Date.now();
    const previous = this.#entries.get(topic);
    try {
      await this.#connect();
      const { topics } = await this.#admin.fetchTopicMetadata({ topics: [topic] });
      const count = topics.find((found) => found.name === topic)?.partitions.length ?? 0;
      if (count === 0) throw new Error('no partitions in its metadata');
      this.#remember(topic, { count, error: undefined, missing: false, fetchedAt, failures: 0 });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const failures = (previous?.failures ?? 0) + 1;
      if (typeof previous?.count === 'number' && failures === 1) {
        // the known count stands; asked again after the failure interval
        this.#remember(topic, {
          ...previous,
          error: message,
          failures,
          fetchedAt: fetchedAt - this.#ttlMs + Math.min(FAILURE_TTL_MS, this.#ttlMs),
        });
        return;
      }
      const missing = (error as { type?: unknown }).type === 'UNKNOWN_TOPIC_OR_PARTITION';
      this.#remember(topic, { count: null, error: message, missing, fetchedAt, failures });
    }
  }

  #remember(topic: string, entry: Entry): void {
    this.#entries.delete(topic);
    this.#entries.set(topic, entry);
    if (this.#entries.size > MAX_TOPICS) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }
}

/** One message that went to the dead-letter topic, or was refused for the same reasons. */
export interface DeadLetterEntry {
  /** When (ISO 8601). */
  at: string;
  direction: 'uplink' | 'downlink';
  /** The rules that failed, with why (what the dead letter's headers say too). */
  failures: Array<{ rule: string; error: string }>;
  /** Uplink: the MQTT topic and client id of the publish. */
  mqttTopic?: string;
  clientId?: string;
  /** Downlink: the record, as `topic/partition/offset`. */
  source?: string;
  /** The dead-letter topic it went to; undefined: none is configured, it was refused only. */
  deadLetterTopic: string | undefined;
}

/**
 * The last dead letters, newest first, for the admin API (`GET /api/dead-letters`) and the
 * dashboard: "why was this message dead-lettered" without reading the dead-letter topic. A ring
 * of a fixed size: memory stays bounded whatever the rate.
 */
export class RecentDeadLetters {
  readonly #capacity: number;
  readonly #entries: DeadLetterEntry[] = [];
  #next = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  add(entry: Omit<DeadLetterEntry, 'at'>): void {
    const kept = { at: new Date().toISOString(), ...entry };
    if (this.#entries.length < this.#capacity) this.#entries.push(kept);
    else this.#entries[this.#next] = kept;
    this.#next = (this.#next + 1) % this.#capacity;
  }

  /** Newest first. */
  list(): DeadLetterEntry[] {
    const newestFirst = [
      ...this.#entries.slice(0, this.#next).reverse(),
      ...this.#entries.slice(this.#next).reverse(),
    ];
    return newestFirst;
  }
}

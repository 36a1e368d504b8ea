import type { Logger } from '../observability/logger.js';
import type { BridgeMetrics } from '../observability/metrics.js';
import type { ProduceFailure } from './produce-failure.js';
import type { OutgoingRecord, Settle } from './outgoing-record.js';

/** The records of a settled entry: let go. */
const NO_RECORDS: readonly OutgoingRecord[] = Object.freeze([]);

/** One enqueued group of records (a publish's records), settled once. */
export interface Entry {
  records: readonly OutgoingRecord[];
  /** Bytes of the records' values. */
  bytes: number;
  settle: Settle | undefined;
  enqueuedAt: number;
  /** Records Kafka has not acknowledged yet. */
  unacknowledged: number;
  /** Settled already (stored, refused, or timed out): later outcomes are ignored. */
  settled: boolean;
}

export interface PendingLimits {
  /** Bytes of values waiting for Kafka at which the pipeline reports itself congested. */
  maxPendingBytes: number;
  /** Records waiting for Kafka at which the pipeline reports itself congested. */
  maxPendingRecords: number;
}

/**
 * The entries waiting for Kafka, in the order they came: their budget (records and value bytes
 * against the limits: congestion), the oldest one's age (readiness), and those past a deadline
 * (the ack timeout).
 */
export class PendingEntries {
  /**
   * Entries from `#head` on: not settled yet (and some settled ones), in enqueue order; before
   * it, places let go (undefined). A settled entry lets go of its records and callback (and so
   * of the publish they hold) at once: it is not kept until the array is next compacted.
   */
  #entries: Array<Entry | undefined> = [];
  #head = 0;
  #records = 0;
  #bytes = 0;
  #congested = false;
  readonly #listeners: Array<(congested: boolean) => void> = [];
  #idleWaiters: Array<() => void> = [];
  readonly #limits: PendingLimits;
  readonly #log: Logger;
  readonly #metrics: BridgeMetrics;

  constructor(limits: PendingLimits, log: Logger, metrics: BridgeMetrics) {
    this.#limits = limits;
    this.#log = log;
    this.#metrics = metrics;
    metrics.pendingSource = () => ({ records: this.#records, bytes: this.#bytes });
  }

  add(records: OutgoingRecord[], settle: Settle | undefined): Entry {
    let bytes = 0;
    for (const record of records) bytes += record.value?.length ?? 0;
    const entry: Entry = {
      records,
      bytes,
      settle,
      enqueuedAt: Date.now(),
      unacknowledged: records.length,
      settled: false,
    };
    this.#entries.push(entry);
    this.#track(records.length, bytes);
    return entry;
  }

  /** Settles `entry` (once): its records leave the budget, its callback learns the outcome. */
  settle(entry: Entry, failure: ProduceFailure | undefined): void {
    if (entry.settled) return;
    entry.settled = true;
    this.#track(-entry.records.length, -entry.bytes);
    if (this.#entries[this.#head] === entry) this.#oldest();
    const { settle } = entry;
    entry.settle = undefined;
    entry.records = NO_RECORDS;
    try {
      settle?.(failure);
    } catch (error) {
      // a bug in one publish's callback fails that publish only: the others settle on
      this.#metrics.unhandledErrors.inc({ kind: 'callback' });
      this.#log.error({ err: error }, 'settle callback of a Kafka record failed');
    }
    this.#notifyIfIdle();
  }

  /** Resolves once no entry waits (every one settled). */
  async idle(): Promise<void> {
    if (this.#records === 0) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /** One more record of `entry` is stored: the entry settles with its last one. */
  acknowledge(entry: Entry): void {
    if (entry.settled) return;
    entry.unacknowledged--;
    if (entry.unacknowledged === 0) this.settle(entry, undefined);
  }

  /** How long the oldest entry not settled has waited (0 when none waits). */
  get oldestMs(): number {
    const oldest = this.#oldest();
    return oldest ? Date.now() - oldest.enqueuedAt : 0;
  }

  /** Entries not settled that were enqueued at `deadline` or before. */
  overdue(deadline: number): Entry[] {
    const overdue: Entry[] = [];
    for (let index = this.#head; index < this.#entries.length; index++) {
      const entry = this.#entries[index];
      if (entry === undefined || entry.enqueuedAt > deadline) break;
      if (!entry.settled) overdue.push(entry);
    }
    return overdue;
  }

  /**
   * Called with true when records waiting for Kafka reach `maxPendingRecords`
   * or `maxPendingBytes`, and with false once both are back under half.
   */
  onCongestion(listener: (congested: boolean) => void): void {
    this.#listeners.push(listener);
  }

  /** The oldest entry not settled; settled ones at the front are let go on the way. */
  #oldest(): Entry | undefined {
    while (this.#entries[this.#head]?.settled) this.#entries[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
    return this.#entries[this.#head];
  }

  #track(records: number, bytes: number): void {
    this.#records += records;
    this.#bytes += bytes;
    const { maxPendingRecords, maxPendingBytes } = this.#limits;
    const congested = this.#congested
      ? this.#records >= maxPendingRecords / 2 || this.#bytes >= maxPendingBytes / 2
      : this.#records >= maxPendingRecords || this.#bytes >= maxPendingBytes;
    if (congested === this.#congested) return;
    this.#congested = congested;
    this.#metrics.kafkaCongested.set(congested ? 1 : 0);
    if (congested)
      this.#log.warn(
        { records: this.#records, bytes: this.#bytes },
        'uplink congested: publishing connections are held',
      );
    else this.#log.info('uplink congestion over');
    for (const listener of this.#listeners) listener(congested);
  }

  #notifyIfIdle(): void {
    if (this.#records > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

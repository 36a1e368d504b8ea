/**
 * Latencies as counts in logarithmic buckets (2 % wide, from 1 µs): a generator process
 * records millions of them in constant memory, and the suite merges the histograms of several
 * processes before taking percentiles — percentiles of percentiles would be wrong.
 */
const BASE_MS = 0.001;
const GROWTH = 1.02;
/** Buckets up to about 400 s. */
const BUCKETS = 1_000;

export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #total = 0;
  #maxMs = 0;

  record(ms: number): void {
    const index = ms <= BASE_MS ? 0 : Math.ceil(Math.log(ms / BASE_MS) / Math.log(GROWTH));
    const bucket = Math.min(index, BUCKETS - 1);
    this.#counts[bucket] = (this.#counts[bucket] ?? 0) + 1;
    this.#total++;
    if (ms > this.#maxMs) this.#maxMs = ms;
  }

  get count(): number {
    return this.#total;
  }

  /** The p-th percentile in ms (the upper bound of its bucket); NaN when empty. */
  percentile(p: number): number {
    if (this.#total === 0) return NaN;
    const rank = Math.ceil((this.#total * p) / 100);
    let seen = 0;
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.#counts[index] ?? 0;
      if (seen >= rank) return Math.min(BASE_MS * GROWTH ** index, this.#maxMs);
    }
    return this.#maxMs;
  }

  get maxMs(): number {
    return this.#maxMs;
  }

  /** Non-empty buckets as [index, count] pairs, and the maximum: what a process prints. */
  toJSON(): SerializedHistogram {
    const buckets: [number, number][] = [];
    this.#counts.forEach((count, index) => {
      if (count > 0) buckets.push([index, count]);
    });
    return { buckets, maxMs: this.#maxMs };
  }

  add(other: SerializedHistogram): void {
    for (const [index, count] of other.buckets) {
      this.#counts[index] = (this.#counts[index] ?? 0) + count;
      this.#total += count;
    }
    this.#maxMs = Math.max(this.#maxMs, other.maxMs);
  }

  static merge(histograms: SerializedHistogram[]): LatencyHistogram {
    const merged = new LatencyHistogram();
    for (const histogram of histograms) merged.add(histogram);
    return merged;
  }
}

export interface SerializedHistogram {
  buckets: [number, number][];
  maxMs: number;
}

import type { Counter } from 'prom-client';

/**
 * Counts per mapping rule and outcome, kept in plain maps on the message path (a prom-client
 * counter hashes its labels on every increment) and written to their counter when Prometheus
 * scrapes. Rules removed by a reload keep their counts: counters never go down.
 */
export class RuleCounts<Outcome extends string> {
  readonly #outcomes: readonly Outcome[];
  readonly #counts = new Map<string, number[]>();

  constructor(outcomes: readonly Outcome[]) {
    this.#outcomes = outcomes;
  }

  add(rule: string, outcome: Outcome, count = 1): void {
    let counts = this.#counts.get(rule);
    if (counts === undefined) {
      counts = this.#outcomes.map(() => 0);
      this.#counts.set(rule, counts);
    }
    const index = this.#outcomes.indexOf(outcome);
    counts[index] = (counts[index] ?? 0) + count;
  }

  /** One rule's counts by outcome (zeros for a rule that has counted nothing), for the admin API. */
  get(rule: string): Record<Outcome, number> {
    const counts = this.#counts.get(rule);
    const byOutcome = {} as Record<Outcome, number>;
    for (const [index, outcome] of this.#outcomes.entries())
      byOutcome[outcome] = counts?.[index] ?? 0;
    return byOutcome;
  }

  /** Sets `counter` to the counts, labelled `rule` and `outcome`. */
  writeTo(counter: Counter<'rule' | 'outcome'>): void {
    counter.reset();
    for (const [rule, counts] of this.#counts) {
      for (const [index, outcome] of this.#outcomes.entries()) {
        counter.inc({ rule, outcome }, counts[index] ?? 0);
      }
    }
  }
}

import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RuleCounts } from '../../../src/observability/rule-counts.js';

describe('RuleCounts', () => {
  it('writes every rule and outcome to its counter at scrape, zeros included', async () => {
    const registry = new Registry();
    const counts = new RuleCounts(['produced', 'refused'] as const);
    const counter: Counter<'rule' | 'outcome'> = new Counter({
      name: 'rules_total',
      help: 'h',
      labelNames: ['rule', 'outcome'],
      registers: [registry],
      collect: () => {
        counts.writeTo(counter);
      },
    });
    counts.add('a', 'produced');
    counts.add('a', 'produced', 2);
    counts.add('b', 'refused');
    const text = await registry.metrics();
    expect(text).toContain('rules_total{rule="a",outcome="produced"} 3');
    expect(text).toContain('rules_total{rule="a",outcome="refused"} 0');
    expect(text).toContain('rules_total{rule="b",outcome="refused"} 1');
    counts.add('a', 'produced');
    expect(await registry.metrics()).toContain('rules_total{rule="a",outcome="produced"} 4');
  });
});

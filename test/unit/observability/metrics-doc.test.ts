import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BridgeMetrics } from '../../../src/observability/metrics.js';

/** The metric names of docs/operations.md's table, with their labels. */
function documented(): Map<string, string[]> {
  const text = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const name = /^`(bridge_[a-z_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (name === undefined) continue;
    const labels = [...(cells[3] ?? '').matchAll(/`([a-z_]+)`/g)].map((match) => match[1] ?? '');
    rows.set(name, labels);
  }
  return rows;
}

describe('docs/operations.md metrics table', () => {
  it('lists every metric the bridge registers, with its labels, and no other', async () => {
    const metrics = new BridgeMetrics();
    const registered = new Map<string, string[]>();
    for (const { name } of await metrics.registry.getMetricsAsJSON()) {
      if (!name.startsWith('bridge_')) continue;
      const metric = metrics.registry.getSingleMetric(name) as unknown as { labelNames?: string[] };
      registered.set(name, metric.labelNames ?? []);
    }
    expect(Object.fromEntries(documented())).toEqual(Object.fromEntries(registered));
  });
});

import { describe, expect, it } from 'vitest';
import { RecentDeadLetters } from '../../../src/observability/recent-dead-letters.js';

const entry = (n: number) => ({
  direction: 'uplink' as const,
  failures: [{ rule: `r${n}`, error: 'bad' }],
  deadLetterTopic: 'dead',
});

describe('RecentDeadLetters', () => {
  it('keeps the last entries, newest first, within its capacity', () => {
    const recent = new RecentDeadLetters(3);
    expect(recent.list()).toEqual([]);
    recent.add(entry(1));
    recent.add(entry(2));
    expect(recent.list().map((item) => item.failures[0]?.rule)).toEqual(['r2', 'r1']);
    for (let n = 3; n <= 7; n++) recent.add(entry(n));
    expect(recent.list().map((item) => item.failures[0]?.rule)).toEqual(['r7', 'r6', 'r5']);
    expect(Date.parse(recent.list()[0]?.at ?? '')).not.toBeNaN();
  });
});

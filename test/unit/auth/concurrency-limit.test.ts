import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit } from '../../../src/auth/concurrency-limit.js';
import { hashPassword, pbkdf2Limit, verifyPassword } from '../../../src/auth/scram-verifier.js';

describe('ConcurrencyLimit', () => {
  it('runs at most `limit` tasks at once, in order of arrival, through failures', async () => {
    const limit = new ConcurrencyLimit(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const task = (index: number) => async () => {
      started.push(index);
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      if (index === 3) throw new Error('task 3 fails');
      return index;
    };
    const results = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((i) => limit.run(task(i))));
    expect(most).toBe(2);
    expect(started).toEqual([1, 2, 3, 4, 5, 6]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed'))).toEqual([
      1,
      2,
      'failed',
      4,
      5,
      6,
    ]);
    expect(limit.running).toBe(0);
    expect(limit.waiting).toBe(0);
  });

  it('keeps PBKDF2 to half the libuv pool: the other checks wait their turn', async () => {
    const verifier = await hashPassword('pw', { iterations: 20_000 });
    const checks = Array.from({ length: 6 }, (_, i) =>
      verifyPassword(verifier, i === 0 ? 'pw' : 'x'),
    );
    const half = Math.max(1, Math.floor((Number(process.env.UV_THREADPOOL_SIZE) || 4) / 2));
    expect(pbkdf2Limit.running).toBe(Math.min(half, 6));
    expect(pbkdf2Limit.waiting).toBe(Math.max(0, 6 - half));
    expect(await Promise.all(checks)).toEqual([true, false, false, false, false, false]);
    expect(pbkdf2Limit.running).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { ReloadQueue } from '../../src/reload-queue.js';

describe('ReloadQueue', () => {
  it('runs one reload at a time, and requests made meanwhile join a single next one', async () => {
    const queue = new ReloadQueue<number>();
    const started: number[] = [];
    let release: () => void = () => undefined;
    let runs = 0;
    const reload = async (): Promise<number> => {
      const run = ++runs;
      started.push(run);
      if (run === 1) await new Promise<void>((resolve) => (release = resolve));
      return run;
    };
    const first = queue.request(reload);
    await Promise.resolve();
    const second = queue.request(reload);
    const third = queue.request(reload);
    expect(second).toBe(third);
    expect(started).toEqual([1]);
    release();
    expect(await first).toBe(1);
    expect(await second).toBe(2);
    await queue.settled();
    expect(started).toEqual([1, 2]);
  });
});

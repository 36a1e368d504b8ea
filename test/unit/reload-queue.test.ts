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
    await queue.close();
    expect(started).toEqual([1, 2]);
  });

  it('reloads once after a burst of changes has been quiet, and not after close()', async () => {
    const queue = new ReloadQueue<void>(30);
    let reloads = 0;
    for (let i = 0; i < 5; i++) queue.afterQuiet(() => reloads++);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(reloads).toBe(1);
    queue.afterQuiet(() => reloads++);
    await queue.close();
    queue.afterQuiet(() => reloads++);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(reloads).toBe(1);
  });
});

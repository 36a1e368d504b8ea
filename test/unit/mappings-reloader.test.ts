import { mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MappingsReloader, type MappingsReloaderOptions } from '../../src/mappings-reloader.js';
import { BridgeMetrics } from '../../src/observability/metrics.js';
import { MappingError } from '../../src/rules/errors.js';
import { waitFor } from '../support/wait-for.js';

/** A pino logger whose JSON lines are collected. */
function capturingLog() {
  type Line = { level: number; msg: string };
  const lines: Line[] = [];
  const log = pino(
    { level: 'info' },
    { write: (line: string) => lines.push(JSON.parse(line) as Line) },
  );
  return { log, lines };
}

async function counter(metrics: BridgeMetrics, result: 'success' | 'failure'): Promise<number> {
  const metric = await metrics.mappingsReloads.get();
  return metric.values.find((value) => value.labels.result === result)?.value ?? 0;
}

/** A reloader of "mappings" that are the list of lines of the files `load` reads. */
function reloaderOf(overrides: Partial<MappingsReloaderOptions<string[]>> = {}) {
  const { log, lines } = capturingLog();
  const metrics = new BridgeMetrics();
  const installed: string[][] = [];
  const reloader = new MappingsReloader<string[]>({
    path: 'unused',
    watch: false,
    load: () => Promise.resolve(['rule']),
    check: () => Promise.resolve(),
    ruleCount: (mappings) => mappings.length,
    log,
    metrics,
    ...overrides,
  });
  reloader.onReloaded((mappings) => installed.push(mappings));
  onTestFinished(() => reloader.close());
  return { reloader, installed, metrics, lines };
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

describe('MappingsReloader', () => {
  it('hands an accepted version to the listeners, counts it and logs the rule count', async () => {
    const { reloader, installed, metrics, lines } = reloaderOf({
      load: () => Promise.resolve(['a', 'b']),
    });
    const order: string[] = [];
    reloader.onReloaded(() => order.push('second listener'));
    expect(await reloader.reload()).toEqual({ ok: true, ruleCount: 2 });
    expect(installed).toEqual([['a', 'b']]);
    expect(order).toEqual(['second listener']);
    expect(await counter(metrics, 'success')).toBe(1);
    expect((await metrics.mappingsRules.get()).values[0]?.value).toBe(2);
    expect(lines.at(-1)).toMatchObject({ level: 30, msg: 'mappings reloaded', rules: 2 });
  });

  it('refuses an invalid version: listeners not called, every issue logged at error level', async () => {
    const issues = [
      { file: 'm/a.yaml', line: 3, column: 5, message: 'unknown field "topc"' },
      { file: 'm/b.yaml', line: 0, column: 0, message: 'cannot read: EACCES' },
    ];
    const { reloader, installed, metrics, lines } = reloaderOf({
      load: () => Promise.reject(new MappingError(issues)),
    });
    expect(await reloader.reload()).toEqual({ ok: false, issues });
    expect(installed).toEqual([]);
    expect(await counter(metrics, 'failure')).toBe(1);
    expect(await counter(metrics, 'success')).toBe(0);
    expect(lines.filter((line) => line.level === 50).map((line) => line.msg)).toEqual([
      'm/a.yaml:3:5: unknown field "topc"',
      'm/b.yaml: cannot read: EACCES',
      'mappings reload rejected: the previous rules keep running',
    ]);
  });

  it('refuses a version its check refuses (a fixed partition Kafka does not have)', async () => {
    const issue = { file: 'm.yaml', line: 4, column: 9, message: 'partition 7 is out of range' };
    const { reloader, installed } = reloaderOf({
      check: () => Promise.reject(new MappingError([issue])),
    });
    expect(await reloader.reload()).toEqual({ ok: false, issues: [issue] });
    expect(installed).toEqual([]);
  });

  it('runs one reload at a time; requests made meanwhile share one later reload', async () => {
    const pending: Array<{ resolve: (value: string[]) => void }> = [];
    const { reloader, installed } = reloaderOf({
      load: () => {
        const next = deferred<string[]>();
        pending.push(next);
        return next.promise;
      },
    });
    const first = reloader.reload();
    await waitFor(() => pending.length === 1, { what: 'the first load' });
    const second = reloader.reload();
    const third = reloader.reload();
    expect(third).toBe(second);
    pending[0]?.resolve(['v1']);
    await waitFor(() => pending.length === 2, { what: 'the second load, after the first' });
    expect(installed).toEqual([['v1']]);
    pending[1]?.resolve(['v2', 'v2']);
    expect(await first).toEqual({ ok: true, ruleCount: 1 });
    expect(await second).toEqual({ ok: true, ruleCount: 2 });
    expect(installed).toEqual([['v1'], ['v2', 'v2']]);
  });

  it('waits for a reload in progress on close, and refuses reloads after it', async () => {
    const load = deferred<string[]>();
    const { reloader, installed } = reloaderOf({ load: () => load.promise });
    const running = reloader.reload();
    let closed = false;
    const closing = reloader.close().then(() => (closed = true));
    await Promise.resolve();
    expect(closed).toBe(false);
    load.resolve(['last']);
    await closing;
    expect(await running).toEqual({ ok: true, ruleCount: 1 });
    expect(installed).toEqual([['last']]);
    expect(await reloader.reload()).toMatchObject({
      ok: false,
      issues: [{ message: 'the bridge is stopping' }],
    });
  });

  describe('watching', () => {
    async function folderWithFile(text: string) {
      const folder = await mkdtemp(join(tmpdir(), 'reloader-'));
      onTestFinished(() => rm(folder, { recursive: true, force: true }));
      const file = join(folder, 'rules.yaml');
      await writeFile(file, text);
      return { folder, file };
    }

    it('loads a burst of writes once, after they stopped', async () => {
      const { file } = await folderWithFile('v0');
      let loads = 0;
      const { installed } = reloaderOf({
        path: file,
        watch: true,
        debounceMs: 300,
        load: async (path) => {
          loads += 1;
          return [await readFile(path, 'utf8')];
        },
      });
      for (const text of ['v1', 'v2', 'v3']) await writeFile(file, text);
      await waitFor(() => installed.length > 0, { what: 'the reload' });
      expect(installed).toEqual([['v3']]);
      expect(loads).toBe(1);
    });

    it('follows a file replaced by rename, as editors save', async () => {
      const { folder, file } = await folderWithFile('v0');
      const { installed } = reloaderOf({
        path: file,
        watch: true,
        debounceMs: 50,
        load: async (path) => [await readFile(path, 'utf8')],
      });
      for (const text of ['v1', 'v2']) {
        await writeFile(join(folder, 'rules.yaml.tmp'), text);
        await rename(join(folder, 'rules.yaml.tmp'), file);
        await waitFor(() => installed.at(-1)?.[0] === text, { what: `version ${text}` });
      }
    });

    it('sees mapping files added to and removed from a folder', async () => {
      const { folder } = await folderWithFile('v0');
      let loads = 0;
      const { installed } = reloaderOf({
        path: folder,
        watch: true,
        debounceMs: 50,
        load: async (path) => {
          loads += 1;
          return [(await readFile(join(path, 'rules.yaml'), 'utf8')) + String(loads)];
        },
      });
      await writeFile(join(folder, 'more.yml'), 'uplink: []');
      await waitFor(() => installed.length === 1, { what: 'the reload for more.yml' });
      await unlink(join(folder, 'more.yml'));
      await waitFor(() => installed.length === 2, { what: 'the reload for the removal' });
      expect(loads).toBe(2);
    });

    it('keeps watching a folder that was replaced by another one', async () => {
      const { folder } = await folderWithFile('v0');
      const mappings = join(folder, 'mappings');
      const { folder: first } = await folderWithFile('v1');
      await rename(first, mappings);
      const { installed } = reloaderOf({
        path: mappings,
        watch: true,
        debounceMs: 50,
        load: async (path) => [await readFile(join(path, 'rules.yaml'), 'utf8')],
      });
      const { folder: second } = await folderWithFile('v2');
      await rename(mappings, join(folder, 'old'));
      await rename(second, mappings);
      await waitFor(() => installed.at(-1)?.[0] === 'v2', { what: 'the new folder' });
      await writeFile(join(mappings, 'rules.yaml'), 'v3');
      await waitFor(() => installed.at(-1)?.[0] === 'v3', { what: 'a change in the new folder' });
    });
  });
});

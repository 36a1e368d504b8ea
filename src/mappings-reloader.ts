import { statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import type { Logger } from './observability/logger.js';
import type { BridgeMetrics } from './observability/metrics.js';
import { MappingError, formatIssue, type MappingIssue } from './rules/errors.js';
import { ReloadQueue } from './reload-queue.js';

const MAPPING_EXTENSIONS = ['.yaml', '.yml'];

/** The outcome of one reload: the new rules are in use, or they were refused and the old stay. */
export type ReloadResult = { ok: true; ruleCount: number } | { ok: false; issues: MappingIssue[] };

export interface MappingsReloaderOptions<T> {
  /** The mapping file or folder (option `mappings`). */
  path: string;
  /** Reload when the files change (option `mappingsWatch`); `reload()` works either way. */
  watch: boolean;
  /** Reads and compiles the mappings (`loadMappings`); a MappingError refuses the new version. */
  load: (path: string) => Promise<T>;
  /**
   * Checks a loaded version against the running bridge (fixed partitions against Kafka's
   * partition counts); a MappingError refuses it.
   */
  check: (mappings: T) => Promise<void>;
  /** The uplink rules of a version, for the log and the `bridge_mappings_rules` gauge. */
  ruleCount: (mappings: T) => number;
  log: Logger;
  metrics: BridgeMetrics;
  /** Quiet time after the last file event before reloading; default 200 ms. */
  debounceMs?: number;
}

/**
 * Hot reload of the mapping rules, on `reload()` (SIGHUP) or, when watching, on a change of the
 * file or folder: the new version is loaded and checked in full, then handed to every
 * `onReloaded` listener in one synchronous step, so no publish sees half of it. An invalid
 * version is logged (every `file:line:column: message`), counted, and the old rules keep running.
 *
 * Watching tolerates editors that save by renaming over the file, new and removed files in a
 * folder, the folder itself being replaced, and Kubernetes ConfigMap volumes (which swap a
 * `..data` symlink).
 */
export class MappingsReloader<T> {
  readonly #options: MappingsReloaderOptions<T>;
  readonly #path: string;
  readonly #listeners: Array<(mappings: T) => void> = [];
  /** Watches the parent folder for the mappings path itself being written, replaced or removed. */
  #parentWatcher: FSWatcher | undefined;
  /** Watches a mappings folder for its files. */
  #folderWatcher: FSWatcher | undefined;
  readonly #reloads: ReloadQueue<ReloadResult>;

  constructor(options: MappingsReloaderOptions<T>) {
    this.#options = options;
    this.#reloads = new ReloadQueue(options.debounceMs);
    this.#path = resolve(options.path);
    if (options.watch) this.#watchParent();
  }

  /**
   * Adds a listener called with every accepted version, in registration order, synchronously
   * one after the other (a publish is routed either before all of them or after all of them).
   * Listeners swap the rules in (the uplink router, later the downlink rules) and must not throw.
   */
  onReloaded(listener: (mappings: T) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Loads, checks and installs the mappings now. Never rejects. Requests made while one runs
   * are served by a single reload after it, which reads the files afresh.
   */
  reload(): Promise<ReloadResult> {
    if (this.#reloads.closed) {
      return Promise.resolve({ ok: false, issues: [this.#wholePath('the bridge is stopping')] });
    }
    return this.#reloads.request(() => this.#reloadOnce());
  }

  /** Stops watching and waits for a reload in progress; later reloads are refused. */
  async close(): Promise<void> {
    this.#parentWatcher?.close();
    this.#folderWatcher?.close();
    await this.#reloads.close();
  }

  async #reloadOnce(): Promise<ReloadResult> {
    const { load, check, ruleCount, log, metrics } = this.#options;
    let mappings: T;
    try {
      mappings = await load(this.#options.path);
      await check(mappings);
    } catch (error) {
      const issues =
        error instanceof MappingError
          ? error.issues
          : [this.#wholePath(error instanceof Error ? error.message : String(error))];
      for (const issue of issues) log.error({ mappings: this.#options.path }, formatIssue(issue));
      log.error(
        { mappings: this.#options.path, errors: issues.length },
        'mappings reload rejected: the previous rules keep running',
      );
      metrics.mappingsReloads.inc({ result: 'failure' });
      return { ok: false, issues };
    }
    for (const listener of this.#listeners) listener(mappings);
    const rules = ruleCount(mappings);
    metrics.mappingsReloads.inc({ result: 'success' });
    metrics.mappingsRules.set(rules);
    log.info({ mappings: this.#options.path, rules }, 'mappings reloaded');
    return { ok: true, ruleCount: rules };
  }

  #wholePath(message: string): MappingIssue {
    return { file: this.#options.path, line: 0, column: 0, message };
  }

  /** A change: reload once the files have been quiet for the debounce time. */
  #changed(): void {
    this.#reloads.afterQuiet(() => this.reload());
  }

  /**
   * The parent folder sees the path written, renamed over, removed or created; each such event
   * also re-watches a folder path, which may be a new folder now.
   */
  #watchParent(): void {
    const name = basename(this.#path);
    this.#parentWatcher = this.#watch(dirname(this.#path), (file) => {
      if (file !== null && file !== name && !file.startsWith('..')) return;
      this.#watchFolder();
      this.#changed();
    });
    this.#watchFolder();
  }

  #watchFolder(): void {
    this.#folderWatcher?.close();
    this.#folderWatcher = undefined;
    let isFolder: boolean;
    try {
      isFolder = statSync(this.#path).isDirectory();
    } catch {
      return; // gone for now: the parent watcher sees it come back
    }
    if (!isFolder) return;
    this.#folderWatcher = this.#watch(this.#path, (file) => {
      if (file === null || file.startsWith('..') || MAPPING_EXTENSIONS.includes(extname(file))) {
        this.#changed();
      }
    });
  }

  /** fs.watch that never throws and never keeps the process alive; failures are logged. */
  #watch(folder: string, onEvent: (file: string | null) => void): FSWatcher | undefined {
    try {
      const watcher = watch(folder, { persistent: false }, (_event, file) => {
        onEvent(file);
      });
      watcher.on('error', (error) => {
        this.#options.log.warn({ folder, err: error }, 'stopped watching the mappings folder');
        watcher.close();
      });
      return watcher;
    } catch (error) {
      this.#options.log.warn(
        { folder, err: error },
        'cannot watch the mappings: reload them with SIGHUP',
      );
      return undefined;
    }
  }
}

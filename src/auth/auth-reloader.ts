import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { formatIssue, type MappingIssue } from '../rules/errors.js';
import { ReloadQueue } from '../reload-queue.js';
import { AuthFileError, readAuthContent, type Authenticator } from './authenticator.js';

/** The outcome of one reload: the new file is in force, or it was refused and the old one stays. */
export type AuthReloadResult = { ok: true; users: number } | { ok: false; issues: MappingIssue[] };

export interface AuthReloaderOptions {
  /** The users and ACL file (option `auth.file`); not empty. */
  path: string;
  /** Reload when the file changes; `reload()` (SIGHUP) works either way. */
  watch: boolean;
  /** The authenticator the bridge uses: a valid new version replaces its content. */
  authenticator: Authenticator;
  log: Logger;
  /** Called after each reload, accepted or refused (metrics). */
  onResult?: (result: AuthReloadResult) => void;
  /** Quiet time after the last file event before reloading; default 200 ms. */
  debounceMs?: number;
}

/**
 * Hot reload of the users and ACL file, on `reload()` (SIGHUP) or, when watching, on a change
 * of the file: the new version is read and checked in full, then put in force with
 * `Authenticator.replace()` in one synchronous step, in which the broker judges every client
 * again (`Broker.reauthorize()`). An invalid version is logged (every `file:line:column:
 * message`) and the old one stays in force.
 *
 * Watching the folder tolerates editors that save by renaming over the file, the file being
 * removed and written again, and Kubernetes ConfigMap and Secret volumes (which swap a `..data`
 * symlink).
 */
export class AuthReloader {
  readonly #options: AuthReloaderOptions;
  readonly #path: string;
  #watcher: FSWatcher | undefined;
  readonly #reloads: ReloadQueue<AuthReloadResult>;

  constructor(options: AuthReloaderOptions) {
    this.#options = options;
    this.#reloads = new ReloadQueue(options.debounceMs);
    this.#path = resolve(options.path);
    if (options.watch) this.#watch();
  }

  /**
   * Reads, checks and puts the file in force now. Never rejects. Requests made while one runs
   * are served by a single reload after it, which reads the file afresh.
   */
  reload(): Promise<AuthReloadResult> {
    if (this.#reloads.closed) {
      return Promise.resolve({ ok: false, issues: [this.#wholeFile('the bridge is stopping')] });
    }
    return this.#reloads.request(() => this.#reloadOnce());
  }

  /** Stops watching and waits for a reload in progress; later reloads are refused. */
  async close(): Promise<void> {
    this.#watcher?.close();
    await this.#reloads.close();
  }

  async #reloadOnce(): Promise<AuthReloadResult> {
    const { authenticator, log, path } = this.#options;
    let result: AuthReloadResult;
    try {
      const content = await readAuthContent(path);
      if (this.#reloads.closed) {
        result = { ok: false, issues: [this.#wholeFile('the bridge is stopping')] };
      } else {
        authenticator.replace(content);
        result = { ok: true, users: content.users.size };
        log.info({ file: path, users: content.users.size }, 'users and ACLs reloaded');
      }
    } catch (error) {
      const issues =
        error instanceof AuthFileError
          ? error.issues
          : [this.#wholeFile(error instanceof Error ? error.message : String(error))];
      for (const issue of issues) log.error({ file: path }, formatIssue(issue));
      log.error(
        { file: path, errors: issues.length },
        'users and ACLs reload rejected: the previous file stays in force',
      );
      result = { ok: false, issues };
    }
    this.#options.onResult?.(result);
    return result;
  }

  #wholeFile(message: string): MappingIssue {
    return { file: this.#options.path, line: 0, column: 0, message };
  }

  /** A change: reload once the file has been quiet for the debounce time. */
  #changed(): void {
    this.#reloads.afterQuiet(() => this.reload());
  }

  /** Watches the folder: the file written, renamed over, removed or created (or `..data` swapped). */
  #watch(): void {
    const folder = dirname(this.#path);
    const name = basename(this.#path);
    try {
      const watcher = watch(folder, { persistent: false }, (_event, file) => {
        if (file === null || file === name || file.startsWith('..')) this.#changed();
      });
      watcher.on('error', (error) => {
        this.#options.log.warn({ folder, err: error }, 'stopped watching the users and ACL file');
        watcher.close();
      });
      this.#watcher = watcher;
    } catch (error) {
      this.#options.log.warn(
        { folder, err: error },
        'cannot watch the users and ACL file: reload it with SIGHUP',
      );
    }
  }
}

import type { Logger } from './observability/logger.js';

/** What the policy needs of the process (a fake in unit tests). */
export interface ProcessEvents {
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  on(event: 'uncaughtException', listener: (error: Error) => void): unknown;
}

export interface ProcessPolicyActions {
  /** Counts an error no code handled, by kind. */
  count(kind: 'rejection' | 'exception'): void;
  /** Stops the bridge as gracefully as it can, then ends the process with exit code 1. */
  stopAndExit(): void;
}

/**
 * What happens to an error no code handled — a bug, since every handler, callback and promise
 * of the bridge handles its failures (one publish or one connection fails, never the process):
 *
 * - a promise rejected with no handler: logged with its stack and counted
 *   (`bridge_unhandled_errors_total{kind="rejection"}`); the process goes on. Node would end
 *   it, and every device's connection with it, for what is at worst one lost callback.
 * - an exception thrown with no handler: logged and counted, then the bridge stops gracefully
 *   and the process exits 1 — after an uncaught exception the state of the program is unknown
 *   (Node's own advice); a supervisor (systemd, Kubernetes, `--workers`) starts it again, and
 *   with sessions in Kafka the devices resume their sessions.
 */
export function installProcessPolicy(
  events: ProcessEvents,
  log: Logger,
  actions: ProcessPolicyActions,
): void {
  events.on('unhandledRejection', (reason) => {
    actions.count('rejection');
    log.error({ err: reason }, 'unhandled promise rejection (a bug): the process goes on');
  });
  let exiting = false;
  events.on('uncaughtException', (error) => {
    actions.count('exception');
    log.fatal({ err: error }, 'uncaught exception (a bug): stopping');
    if (exiting) return;
    exiting = true;
    actions.stopAndExit();
  });
}

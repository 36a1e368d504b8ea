import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * What test/support/kafka-global-setup.ts provides to the integration tests, typed for
 * `inject('kafkaBrokers')` / `inject('kafkaControl')`.
 */

/** How the tests' Kafka runs — decides how pauseKafka()/resumeKafka() work. */
export type KafkaControl =
  /** A local JVM started by the global setup: paused with SIGSTOP/SIGCONT. */
  | { kind: 'local'; pid: number }
  /** A testcontainers container: paused with `docker pause`/`docker unpause`. */
  | { kind: 'container'; id: string }
  /** KAFKA_BROKERS: not ours, cannot be paused. */
  | { kind: 'external' };

declare module 'vitest' {
  export interface ProvidedContext {
    /** Comma-separated bootstrap servers, e.g. `127.0.0.1:40123`. */
    kafkaBrokers: string;
    kafkaControl: KafkaControl;
  }
}

/**
 * Folder of pause tokens shared by all test workers: pauseKafka() adds one, resumeKafka() removes
 * its own and only really resumes Kafka once no other test still holds a pause.
 */
export function pauseTokenDir(control: KafkaControl): string | undefined {
  if (control.kind === 'external') return undefined;
  const id = control.kind === 'local' ? `pid-${control.pid}` : control.id.slice(0, 12);
  return path.join(tmpdir(), `bridge-kafka-pauses-${id}`);
}

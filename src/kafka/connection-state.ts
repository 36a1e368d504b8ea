import type { Producer } from 'kafkajs';
import type { BridgeConfig } from '../config/load.js';
import { BridgeError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import { accessProblemOf } from './access-problem.js';

/**
 * Whether the producer in use is connected to Kafka, and what keeps it from being so: the
 * readiness endpoint's view of the Kafka connection.
 */
export class KafkaConnectionState {
  #connected = false;
  /** Why Kafka does not take the bridge (refused credentials, untrusted certificate). */
  problem: string | undefined;
  /** The broker that last refused the bridge's credentials. */
  refusedBy: string | undefined;

  get connected(): boolean {
    return this.#connected;
  }

  /** Follows `producer`'s connects and disconnects (the pipeline may replace the producer). */
  follow(producer: Producer): void {
    producer.on(producer.events.CONNECT, () => {
      this.#connected = true;
      this.problem = undefined;
    });
    producer.on(producer.events.DISCONNECT, () => {
      this.#connected = false;
    });
  }
}

/** Pause between attempts while Kafka refuses the bridge's credentials or certificate. */
const ACCESS_RETRY_MS = 5_000;
/** Pause before another attempt when one failed at once (Kafka answered, but not yet "yes"). */
const RETRY_MS = 1_000;

/**
 * Connects the producer. Kafka not answering: tried until `kafka.connectTimeoutMs` has passed
 * without an answer, then start fails. Kafka refusing the bridge (credentials, certificate,
 * ACLs): said once a minute, clearly, and tried again every 5 s for as long as it takes —
 * readiness says why meanwhile; each refusal gives the next attempt the whole timeout again.
 */
export async function connectProducer(
  producer: Producer,
  config: BridgeConfig,
  connection: KafkaConnectionState,
  log: Logger,
  { accessRetryMs = ACCESS_RETRY_MS, retryMs = RETRY_MS } = {},
): Promise<void> {
  const brokers = config.kafka.brokers.join(',');
  const timeoutMs = config.kafka.connectTimeoutMs;
  let deadline = Date.now() + timeoutMs;
  const refusals = new RateLimitedLog(log);
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        producer.connect(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => {
              reject(new Error(`no answer within ${timeoutMs} ms`));
            },
            Math.max(0, deadline - Date.now()),
          );
        }),
      ]);
      return;
    } catch (error) {
      const access = accessProblemOf(error);
      if (access) {
        const broker = access.broker ?? connection.refusedBy ?? brokers;
        connection.problem = `Kafka at ${broker} refused the bridge: ${access.cause}`;
        refusals.log(
          'error',
          access.kind,
          { broker },
          `${connection.problem} (check kafka.ssl.*, kafka.sasl.* and the bridge's Kafka ACLs); retrying every ${accessRetryMs / 1000} s`,
        );
        await sleep(accessRetryMs);
        deadline = Date.now() + timeoutMs;
        continue;
      }
      if (Date.now() + retryMs < deadline) {
        await sleep(retryMs);
        continue;
      }
      await producer.disconnect().catch(() => undefined);
      throw new BridgeError(
        'KAFKA_UNAVAILABLE',
        `cannot reach Kafka at ${brokers} (kafka.brokers, env BRIDGE_KAFKA_BROKERS): ${(error as Error).message}`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

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

/**
 * Connects the producer. Kafka not answering: tried until `kafka.connectTimeoutMs`, then start
 * fails. Kafka refusing the bridge (credentials, certificate): said once a minute, clearly,
 * and tried again every 5 s for as long as it takes — readiness says why meanwhile.
 */
export async function connectProducer(
  producer: Producer,
  config: BridgeConfig,
  connection: KafkaConnectionState,
  log: Logger,
): Promise<void> {
  const brokers = config.kafka.brokers.join(',');
  const deadline = Date.now() + config.kafka.connectTimeoutMs;
  const refusals = new RateLimitedLog(log);
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        producer.connect(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => {
              reject(new Error(`no answer within ${config.kafka.connectTimeoutMs} ms`));
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
          access.cause,
          { broker },
          `${connection.problem} (check kafka.ssl.* and kafka.sasl.*); retrying every ${ACCESS_RETRY_MS / 1000} s`,
        );
        await new Promise((resolve) => setTimeout(resolve, ACCESS_RETRY_MS));
        continue;
      }
      if (Date.now() < deadline) continue;
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

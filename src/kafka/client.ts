import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import { registerCompressionCodecs } from './compression.js';
import type { KafkaSecurity } from './security.js';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** A KafkaJS client, secured as `security` says, whose logs go to the bridge's pino logger. */
export function createKafka(
  options: { brokers: string[]; clientId: string },
  security: KafkaSecurity,
  log: Logger,
): Kafka {
  // consumers (downlink, retained topic) read batches of any codec other producers chose
  registerCompressionCodecs();
  const kafkaLog = log.child({ component: 'kafkajs' });
  // While Kafka is down KafkaJS repeats the same errors many times a second: once a minute each.
  const repeated = new RateLimitedLog(kafkaLog);
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    ...(security.ssl && { ssl: security.ssl }),
    ...(security.sasl && { sasl: security.sasl }),
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...fields } = entry;
        // KafkaJS logs each failed request at ERROR even when it retries it (for example
        // while a new topic gets its leader); the outcome is what matters, so those are debug.
        const retried = message.startsWith('[Connection] Response');
        const mapped = retried ? 'debug' : (LEVELS[level] ?? 'info');
        if (mapped === 'error' || mapped === 'warn') repeated.log(mapped, message, fields, message);
        else kafkaLog[mapped](fields, message);
      },
  });
}

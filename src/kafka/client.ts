import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import { registerCompressionCodecs } from './compression.js';
import { installKafkajsPatches } from './kafkajs-patches.js';
import type { KafkaSecurity } from './security.js';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * KafkaJS's lines about Kafka refusing the bridge (credentials) or the bridge refusing Kafka's
 * certificate. The bridge says these itself, once, with what to check (see connectProducer).
 */
const ACCESS_REFUSED =
  /authentication failed|certificate|wrong version number|Hostname\/IP does not match/i;

/**
 * A KafkaJS client, secured as `security` says, whose logs go to the bridge's pino logger.
 * `refusedBy` learns the broker that refused the bridge's credentials (KafkaJS's error does not
 * say; its log line does).
 */
export function createKafka(
  options: { brokers: string[]; clientId: string },
  security: KafkaSecurity,
  log: Logger,
  refusedBy: (broker: string) => void = () => undefined,
): Kafka {
  // consumers (downlink, retained topic) read batches of any codec other producers chose
  registerCompressionCodecs();
  // in case no entry point installed them first (see kafkajs-patches.ts)
  installKafkajsPatches();
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
      ({ namespace, level, log: entry }: LogEntry) => {
        const { message, ...fields } = entry;
        // KafkaJS logs each failed request at ERROR even when it retries it (for example
        // while a new topic gets its leader); the outcome is what matters, so those are debug.
        const retried = namespace === 'Connection' && message.startsWith('Response ');
        const refused = ACCESS_REFUSED.test(message);
        if (refused && typeof fields.broker === 'string') refusedBy(fields.broker);
        const mapped = retried || refused ? 'debug' : (LEVELS[level] ?? 'info');
        if (mapped === 'error' || mapped === 'warn') repeated.log(mapped, message, fields, message);
        else kafkaLog[mapped](fields, message);
      },
  });
}

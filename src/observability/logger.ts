import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/**
 * Secrets never reach a log line, whatever object a log call (ours or KafkaJS's) is given:
 * fields with these names are replaced.
 */
const REDACTED = ['password', 'token', 'ssl', 'sasl', 'oauthBearerProvider'].flatMap((name) => [
  name,
  `*.${name}`,
  `*.*.${name}`,
]);

/** JSON lines on stdout; human-readable only when asked. */
export function createLogger(
  options: { level: string; pretty: boolean },
  destination?: NodeJS.WritableStream,
): Logger {
  const settings = { level: options.level, redact: { paths: REDACTED, censor: '[redacted]' } };
  if (options.pretty) {
    return pino(
      settings,
      pretty({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l', sync: true }),
    );
  }
  return destination ? pino(settings, destination) : pino(settings);
}

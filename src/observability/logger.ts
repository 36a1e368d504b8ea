import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/** JSON lines on stdout; human-readable only when asked. */
export function createLogger(options: { level: string; pretty: boolean }): Logger {
  if (options.pretty) {
    return pino(
      { level: options.level },
      pretty({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l', sync: true }),
    );
  }
  return pino({ level: options.level });
}

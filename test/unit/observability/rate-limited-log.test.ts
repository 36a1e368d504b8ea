import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { RateLimitedLog } from '../../../src/observability/rate-limited-log.js';

function capture(): { lines: Array<Record<string, unknown>>; log: RateLimitedLog } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { lines, log: new RateLimitedLog(logger, 60_000) };
}

describe('RateLimitedLog', () => {
  it('logs a cause once per interval and counts what it left out', () => {
    vi.useFakeTimers();
    try {
      const { lines, log } = capture();
      for (let index = 0; index < 5; index++) log.warn('ECONNREFUSED', {}, 'Kafka unreachable');
      log.log('error', 'other', {}, 'something else');
      expect(lines.map((line) => [line.msg, line.suppressed])).toEqual([
        ['Kafka unreachable', 0],
        ['something else', 0],
      ]);
      vi.advanceTimersByTime(60_000);
      log.warn('ECONNREFUSED', {}, 'Kafka unreachable');
      expect(lines.at(-1)).toMatchObject({ msg: 'Kafka unreachable', suppressed: 4, level: 40 });
      expect(lines[1]).toMatchObject({ level: 50 });
    } finally {
      vi.useRealTimers();
    }
  });
});

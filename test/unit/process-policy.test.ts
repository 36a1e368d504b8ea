import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { installProcessPolicy } from '../../src/process-policy.js';

function setup() {
  const lines: Array<{ level: number; msg: string; err?: { message: string } }> = [];
  const log = pino(
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
        done();
      },
    }),
  );
  const events = new EventEmitter();
  const counted: string[] = [];
  let stops = 0;
  installProcessPolicy(events, log, {
    count: (kind) => counted.push(kind),
    stopAndExit: () => stops++,
  });
  return { events, lines, counted, stops: () => stops };
}

describe('process policy for errors no code handled', () => {
  it('logs and counts an unhandled rejection, and goes on', () => {
    const { events, lines, counted, stops } = setup();
    events.emit('unhandledRejection', new Error('lost callback'));
    expect(counted).toEqual(['rejection']);
    expect(stops()).toBe(0);
    expect(lines[0]).toMatchObject({ level: 50, err: { message: 'lost callback' } });
  });

  it('logs and counts an uncaught exception, and stops the bridge once', () => {
    const { events, lines, counted, stops } = setup();
    events.emit('uncaughtException', new Error('broken state'));
    events.emit('uncaughtException', new Error('again while stopping'));
    expect(counted).toEqual(['exception', 'exception']);
    expect(stops()).toBe(1);
    expect(lines[0]).toMatchObject({ level: 60, err: { message: 'broken state' } });
  });
});

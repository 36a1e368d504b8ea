import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { RetainedConvergence, WRITE_HEADER } from '../../../src/cluster/retained-convergence.js';

let nextOffset = 0;

/** A record of the retained topic as KafkaJS gives it; `write` marks a bridge's own write. */
function record(topic: string, value: string, write?: string): KafkaMessage {
  return {
    key: Buffer.from(topic),
    value: Buffer.from(value),
    offset: String(nextOffset++),
    timestamp: '0',
    attributes: 0,
    headers: write === undefined ? {} : { [WRITE_HEADER]: Buffer.from(write) },
  };
}

describe('RetainedConvergence', () => {
  it('applies other bridges’ records while none of its own is on its way', () => {
    const subject = new RetainedConvergence('me');
    expect(subject.read(0, record('t', 'theirs'))).toBe(true);
  });

  it('skips records of a topic while its own change is on its way (Kafka placed them before), and its own echo', () => {
    const subject = new RetainedConvergence('me');
    const write = subject.writing('t');
    expect(write).toMatch(/^me:/);
    expect(subject.read(0, record('t', 'older, theirs'))).toBe(false);
    expect(subject.read(0, record('other', 'unrelated'))).toBe(true);
    // read back: Kafka's latest, applied (the bridge has it already)
    expect(subject.read(0, record('t', 'mine', write))).toBe(true);
    // read back: later records apply again
    expect(subject.read(0, record('t', 'newer, theirs'))).toBe(true);
  });

  it('waits for the last of several own writes to come back', () => {
    const subject = new RetainedConvergence('me');
    const first = subject.writing('t');
    const second = subject.writing('t');
    expect(subject.read(0, record('t', 'mine 1', first))).toBe(false);
    expect(subject.read(0, record('t', 'theirs, before mine 2'))).toBe(false);
    expect(subject.read(0, record('t', 'mine 2', second))).toBe(true);
    expect(subject.read(0, record('t', 'theirs, after'))).toBe(true);
  });

  it('gives back the last record read meanwhile when its own write fails', () => {
    const subject = new RetainedConvergence('me');
    const first = subject.writing('t');
    const second = subject.writing('t');
    subject.read(0, record('t', 'mine 1', first));
    const theirs = record('t', 'theirs');
    subject.read(0, theirs);
    expect(subject.failed('t', second)).toBe(theirs);
    expect(subject.read(0, record('t', 'later'))).toBe(true);
  });

  it('applies an own record that comes back after its write was given up (timed out) or twice', () => {
    const subject = new RetainedConvergence('me');
    const write = subject.writing('t');
    expect(subject.failed('t', write)).toBeUndefined();
    expect(subject.read(0, record('t', 'mine, late', write))).toBe(true);

    const again = subject.writing('t');
    expect(subject.read(0, record('t', 'mine', again))).toBe(true);
    expect(subject.read(0, record('t', 'mine, duplicate', again))).toBe(true);
  });

  it('applies a record once when KafkaJS fetches it again after a rebalance', () => {
    const subject = new RetainedConvergence('me');
    const first = record('t', 'a');
    expect(subject.read(3, first)).toBe(true);
    expect(subject.read(3, record('t', 'b'))).toBe(true);
    expect(subject.read(3, first)).toBe(false);
    // offsets are per partition
    expect(subject.read(4, { ...first })).toBe(true);
  });

  it('applies its own earlier write once read back when a later one failed (too large) first', () => {
    const subject = new RetainedConvergence('me');
    const small = subject.writing('t');
    const large = subject.writing('t');
    expect(subject.failed('t', large)).toBeUndefined(); // `small` still on its way
    expect(subject.read(0, record('t', 'small', small))).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { AuthThrottle, addressKey } from '../../../src/auth/auth-throttle.js';

/** A throttle on a clock the test moves. */
function throttle(options: ConstructorParameters<typeof AuthThrottle>[0] = {}) {
  const clock = { now: 1_000_000 };
  const subject = new AuthThrottle({ now: () => clock.now, ...options });
  return { subject, clock };
}

/** Attempts from `address`, each one failing once its wait is over; the waits. */
function failSequentially(
  subject: AuthThrottle,
  clock: { now: number },
  address: string,
  attempts: number,
): number[] {
  const waits: number[] = [];
  for (let index = 0; index < attempts; index++) {
    const wait = subject.delay(address);
    waits.push(wait);
    clock.now += wait + 10;
    subject.failed(address);
  }
  return waits;
}

describe('AuthThrottle', () => {
  it('lets the first failures through, then doubles the wait up to the cap', () => {
    const { subject, clock } = throttle({ freeFailures: 3, baseDelayMs: 500, maxDelayMs: 8_000 });
    const waits = failSequentially(subject, clock, '192.0.2.1', 10);
    expect(waits.slice(0, 4)).toEqual([0, 0, 0, 500]);
    // each next wait about twice the previous one, until the cap
    expect(waits.slice(4, 8)).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(waits.slice(8)).toEqual([8_000, 8_000]);
    expect(Math.max(...waits)).toBeLessThanOrEqual(8_000);
  });

  it('keeps addresses apart', () => {
    const { subject, clock } = throttle();
    failSequentially(subject, clock, '192.0.2.1', 6);
    expect(subject.delay('192.0.2.1')).toBeGreaterThan(0);
    expect(subject.delay('192.0.2.2')).toBe(0);
  });

  it('makes parallel attempts take turns', () => {
    const { subject, clock } = throttle({
      freeFailures: 1,
      baseDelayMs: 1_000,
      maxDelayMs: 10_000,
    });
    subject.failed('192.0.2.1');
    const waits = [1, 2, 3, 4].map(() => subject.delay('192.0.2.1'));
    expect(waits).toEqual([1_000, 2_000, 3_000, 4_000]);
    // never beyond the cap, however many wait
    const many = Array.from({ length: 20 }, () => subject.delay('192.0.2.1'));
    expect(Math.max(...many)).toBe(10_000);
    expect(clock.now).toBe(1_000_000);
  });

  it('starts afresh after a success or a quiet period', () => {
    const { subject, clock } = throttle({ quietMs: 60_000 });
    failSequentially(subject, clock, '192.0.2.1', 6);
    subject.succeeded('192.0.2.1');
    expect(subject.delay('192.0.2.1')).toBe(0);
    failSequentially(subject, clock, '192.0.2.1', 6);
    expect(subject.delay('192.0.2.1')).toBeGreaterThan(0);
    clock.now += 60_000 + 8_000;
    expect(subject.delay('192.0.2.1')).toBe(0);
    // and the free failures are free again
    expect(failSequentially(subject, clock, '192.0.2.1', 3)).toEqual([0, 0, 0]);
  });

  it('remembers a bounded number of addresses, forgetting the least recently seen', () => {
    const { subject, clock } = throttle({ maxAddresses: 100, freeFailures: 1 });
    subject.failed('10.0.0.0');
    for (let index = 1; index <= 10_000; index++) {
      subject.failed(`10.0.${index >> 8}.${index & 255}`);
      if (index === 50) expect(subject.delay('10.0.0.0')).toBeGreaterThan(0); // seen again
    }
    expect(subject.size).toBe(100);
    expect(subject.delay('10.0.0.0')).toBe(0);
    expect(subject.delay('10.0.39.16')).toBeGreaterThan(0); // the last one
    expect(clock.now).toBe(1_000_000);
  });

  it('reports an address at most once per interval, with the failures since the last report', () => {
    const { subject, clock } = throttle({ logIntervalMs: 60_000, freeFailures: 3 });
    const reports = Array.from({ length: 5 }, () => {
      clock.now += 1_000;
      return subject.failed('192.0.2.1');
    });
    expect(reports[0]).toEqual({ address: '192.0.2.1', failures: 1, inARow: 1, delayMs: 0 });
    expect(reports.slice(1)).toEqual([undefined, undefined, undefined, undefined]);
    expect(subject.failed('192.0.2.2')?.address).toBe('192.0.2.2');
    subject.succeeded('192.0.2.1');
    expect(subject.failed('192.0.2.1')).toBeUndefined(); // a success does not reopen the interval
    clock.now += 60_000;
    expect(subject.failed('192.0.2.1')).toEqual({
      address: '192.0.2.1',
      failures: 6,
      inARow: 2,
      delayMs: 0,
    });
  });

  it('counts and reports, without delays, when the cap is 0', () => {
    const { subject, clock } = throttle({ maxDelayMs: 0 });
    expect(failSequentially(subject, clock, '192.0.2.1', 10)).toEqual(new Array(10).fill(0));
  });
});

describe('addressKey', () => {
  it('takes the host of host:port, IPv4 mapped into IPv6 as IPv4, and IPv6 by its /64', () => {
    expect(addressKey('192.0.2.1:51234')).toBe('192.0.2.1');
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('::ffff:192.0.2.1:51234')).toBe('192.0.2.1');
    expect(addressKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd:443')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2::7')).toBe('2001:db8:1:2::/64');
    expect(addressKey('[2001:0db8:0001:0002::7]:1883')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::1:1883')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('?:0')).toBe('?');
  });
});

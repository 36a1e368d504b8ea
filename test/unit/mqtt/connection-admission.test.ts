import { describe, expect, it } from 'vitest';
import {
  ConnectionAdmission,
  type AdmissionOptions,
  type ConnectionLimits,
} from '../../../src/mqtt/connection-admission.js';

const NO_LIMITS: ConnectionLimits = {
  maxConnections: 1_000_000,
  maxConnectionsPerAddress: 0,
  maxConnectRate: 0,
};

/** An admission on a clock the test moves. */
function admission(limits: Partial<ConnectionLimits>, options: Partial<AdmissionOptions> = {}) {
  const clock = { now: 1_000_000 };
  const subject = new ConnectionAdmission(
    { ...NO_LIMITS, ...limits },
    { now: () => clock.now, ...options },
  );
  return { subject, clock };
}

/** `count` attempts from `address` at once: what each got (undefined: admitted). */
function attempts(subject: ConnectionAdmission, address: string, count: number) {
  return Array.from({ length: count }, () => subject.admit(address));
}

describe('ConnectionAdmission', () => {
  it('admits up to maxConnections open at once over all addresses, then refuses', () => {
    const { subject } = admission({ maxConnections: 3 });
    expect(subject.admit('192.0.2.1')).toBeUndefined();
    expect(subject.admit('192.0.2.2')).toBeUndefined();
    expect(subject.admit('192.0.2.3')).toBeUndefined();
    expect(subject.admit('192.0.2.4')).toBe('mqtt.maxConnections');
    subject.release('192.0.2.2');
    expect(subject.admit('192.0.2.4')).toBeUndefined();
    expect(subject.admit('192.0.2.5')).toBe('mqtt.maxConnections');
  });

  it('admits up to maxConnectionsPerAddress from one address, others unaffected', () => {
    const { subject } = admission({ maxConnectionsPerAddress: 2 });
    expect(attempts(subject, '192.0.2.1', 3)).toEqual([
      undefined,
      undefined,
      'mqtt.maxConnectionsPerAddress',
    ]);
    expect(subject.admit('192.0.2.2')).toBeUndefined();
    subject.release('192.0.2.1');
    expect(attempts(subject, '192.0.2.1', 2)).toEqual([undefined, 'mqtt.maxConnectionsPerAddress']);
  });

  it('takes no slot for a refused connection', () => {
    const { subject } = admission({ maxConnections: 2, maxConnectionsPerAddress: 1 });
    expect(attempts(subject, '192.0.2.1', 5)).toEqual([
      undefined,
      ...Array<string>(4).fill('mqtt.maxConnectionsPerAddress'),
    ]);
    // the four refusals took nothing: one slot of the two is still free
    expect(subject.admit('192.0.2.2')).toBeUndefined();
    expect(subject.admit('192.0.2.3')).toBe('mqtt.maxConnections');
  });

  it('does not limit connections per address with maxConnectionsPerAddress 0', () => {
    const { subject } = admission({ maxConnections: 100, maxConnectionsPerAddress: 0 });
    expect(attempts(subject, '192.0.2.1', 100).every((refused) => refused === undefined)).toBe(
      true,
    );
    expect(subject.admit('192.0.2.1')).toBe('mqtt.maxConnections');
  });

  it('admits a burst of maxConnectRate from an address, then maxConnectRate a second', () => {
    const { subject, clock } = admission({ maxConnectRate: 10 });
    const burst = attempts(subject, '192.0.2.1', 15);
    expect(burst.slice(0, 10)).toEqual(Array<undefined>(10).fill(undefined));
    expect(burst.slice(10)).toEqual(Array<string>(5).fill('mqtt.maxConnectRate'));
    // another address has a bucket of its own
    expect(subject.admit('192.0.2.2')).toBeUndefined();
    // a tenth of a second later: one more
    clock.now += 100;
    expect(attempts(subject, '192.0.2.1', 2)).toEqual([undefined, 'mqtt.maxConnectRate']);
    // a steady 10 a second goes through
    for (let second = 0; second < 3; second++) {
      for (let tick = 0; tick < 10; tick++) {
        clock.now += 100;
        expect(subject.admit('192.0.2.1')).toBeUndefined();
      }
    }
    // quiet for long: a burst again, of one second's worth only
    clock.now += 60_000;
    expect(
      attempts(subject, '192.0.2.1', 11).filter((refused) => refused === undefined),
    ).toHaveLength(10);
  });

  it('charges the rate only for admitted connections', () => {
    const { subject, clock } = admission({ maxConnectRate: 5, maxConnectionsPerAddress: 1 });
    expect(attempts(subject, '192.0.2.1', 10)).toEqual([
      undefined,
      ...Array<string>(9).fill('mqtt.maxConnectionsPerAddress'),
    ]);
    subject.release('192.0.2.1');
    // the refusals took no share of the rate: four connections are left in the burst
    for (let index = 0; index < 4; index++) {
      expect(subject.admit('192.0.2.1')).toBeUndefined();
      subject.release('192.0.2.1');
    }
    expect(subject.admit('192.0.2.1')).toBe('mqtt.maxConnectRate');
    clock.now += 200;
    expect(subject.admit('192.0.2.1')).toBeUndefined();
  });

  it('does not limit the rate with maxConnectRate 0', () => {
    const { subject } = admission({ maxConnectRate: 0 });
    expect(attempts(subject, '192.0.2.1', 10_000).every((refused) => refused === undefined)).toBe(
      true,
    );
  });

  it('remembers the rate of maxAddresses addresses, the least recently seen forgotten first', () => {
    const { subject } = admission({ maxConnectRate: 1 }, { maxAddresses: 3 });
    for (const address of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) {
      expect(subject.admit(address)).toBeUndefined();
    }
    // .1 seen again: .2 is now the least recently seen
    expect(subject.admit('192.0.2.1')).toBe('mqtt.maxConnectRate');
    expect(subject.admit('192.0.2.4')).toBeUndefined();
    // .2 was forgotten (its bucket is full again), .1 was not
    expect(subject.admit('192.0.2.2')).toBeUndefined();
    expect(subject.admit('192.0.2.1')).toBe('mqtt.maxConnectRate');
  });
});

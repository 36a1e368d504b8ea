import { describe, expect, it } from 'vitest';
import { anonymousAllowed, isLoopbackAddress } from '../../../src/auth/anonymous-access.js';

describe('anonymous access without a users file', () => {
  it.each([
    ['127.0.0.1:50000', true],
    ['127.1.2.3:1', true],
    ['::1:50000', true],
    ['::ffff:127.0.0.1:50000', true],
    ['192.0.2.10:50000', false],
    ['::ffff:192.0.2.10:50000', false],
    ['2001:db8::1:50000', false],
    ['10.0.0.5:1883', false],
    ['?:0', false],
  ])('by default takes a client at %s: %s', (remote, allowed) => {
    expect(anonymousAllowed('loopback', remote)).toBe(allowed);
  });

  it('takes every client with auth.allowAnonymous', () => {
    expect(anonymousAllowed('anywhere', '192.0.2.10:50000')).toBe(true);
  });

  it('knows the loopback addresses', () => {
    expect(isLoopbackAddress('127.0.0.1')).toBe(true);
    expect(isLoopbackAddress('::1')).toBe(true);
    expect(isLoopbackAddress('128.0.0.1')).toBe(false);
    expect(isLoopbackAddress('localhost')).toBe(false);
  });
});

import { isIP } from 'node:net';

/**
 * Without a users file, who may connect: `loopback` (the default) takes only clients that
 * connect from this machine's loopback addresses — tools and tests on the machine, nothing from
 * the network — and `anywhere` (`auth.allowAnonymous`) every client, as an explicit choice.
 */
export type AnonymousAccess = 'loopback' | 'anywhere';

/** Whether a client at `remote` ("ip:port", as the listeners give it) may connect anonymously. */
export function anonymousAllowed(access: AnonymousAccess, remote: string): boolean {
  return access === 'anywhere' || isLoopbackAddress(hostOf(remote));
}

/** 127.0.0.0/8, ::1, and IPv4-mapped 127.x (a dual-stack socket's view of an IPv4 client). */
export function isLoopbackAddress(address: string): boolean {
  const ip = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  if (isIP(ip) === 4) return ip.startsWith('127.');
  return ip === '::1' || ip === '0:0:0:0:0:0:0:1';
}

function hostOf(remote: string): string {
  const colon = remote.lastIndexOf(':');
  const host = colon < 0 ? remote : remote.slice(0, colon);
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

import type { Server as NetServer, Socket } from 'node:net';

/**
 * Idle time after which the operating system starts probing an accepted connection (TCP
 * keepalive). A peer that vanished without a FIN (power cut, NAT entry dropped) is then noticed
 * even when the client asked for no MQTT keep alive, or has not sent CONNECT yet; probes
 * interval and count are the system's.
 */
export const TCP_KEEPALIVE_DELAY_MS = 60_000;

/** What Node's listening TCP handle offers (internal: `server._handle`). */
interface ListeningHandle {
  setKeepAlive?: (enable: boolean, delaySeconds: number) => number;
  setNoDelay?: (enable: boolean) => number;
}

/**
 * TCP keepalive, and with `noDelay` TCP_NODELAY, on every socket `server` accepts: plain TCP,
 * and for TLS and HTTPS servers the TCP socket under TLS, from before the handshake.
 *
 * On Linux an accepted socket inherits both options from the listening socket, so they are set
 * there once: per connection they cost three to five system calls, an eighth of what accepting
 * one costs. Elsewhere, or when the listening socket is not this process's own (the cluster
 * module's primary accepts for `start --workers`), each accepted socket gets them.
 */
export function acceptedSocketOptions(server: NetServer, noDelay: boolean): void {
  let inherited = false;
  server.on('listening', () => {
    const handle = (server as unknown as { _handle?: ListeningHandle | null })._handle;
    inherited =
      process.platform === 'linux' &&
      typeof handle?.setKeepAlive === 'function' &&
      typeof handle.setNoDelay === 'function' &&
      handle.setKeepAlive(true, TCP_KEEPALIVE_DELAY_MS / 1000) === 0 &&
      (!noDelay || handle.setNoDelay(true) === 0);
  });
  server.on('connection', (socket: Socket) => {
    if (inherited) return;
    socket.setKeepAlive(true, TCP_KEEPALIVE_DELAY_MS);
    if (noDelay) socket.setNoDelay(true);
  });
}

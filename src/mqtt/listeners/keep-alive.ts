import type { Server as NetServer, Socket } from 'node:net';

/**
 * Idle time after which the operating system starts probing an accepted connection (TCP
 * keepalive). A peer that vanished without a FIN (power cut, NAT entry dropped) is then noticed
 * even when the client asked for no MQTT keep alive, or has not sent CONNECT yet; probes
 * interval and count are the system's.
 */
export const TCP_KEEPALIVE_DELAY_MS = 60_000;

/**
 * TCP keepalive on every socket `server` accepts: plain TCP, and for TLS and HTTPS servers the
 * TCP socket under TLS, from before the handshake.
 */
export function keepAliveOnAccept(server: Pick<NetServer, 'on'>): void {
  server.on('connection', (socket: Socket) => {
    socket.setKeepAlive(true, TCP_KEEPALIVE_DELAY_MS);
  });
}

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import type { Broker } from '../broker.js';
import { closeServer, listenOn } from '../../server-lifecycle.js';
import { certificateName, type CertificateIdentity } from './certificate-identity.js';
import { acceptedSocketOptions } from './accepted-socket-options.js';

/**
 * MQTT over TCP, or over TLS when `tls` is given: each socket becomes a broker connection, with
 * TCP keepalive and TCP_NODELAY on.
 */
export class TcpListener {
  readonly #server: Server;

  /** `identity`: what a verified client certificate tells of its client (TLS only). */
  constructor(broker: Broker, tls?: TlsOptions, identity: CertificateIdentity = 'none') {
    const accept = (socket: Socket): void => {
      const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
      broker.accept(socket, remote, certificateName(socket, identity));
    };
    if (tls) {
      const server = createTlsServer(tls, accept);
      // a failed handshake (bad certificate, plain MQTT on the TLS port) concerns that client only
      server.on('tlsClientError', (error) => {
        broker.log.debug({ err: error }, 'TLS handshake failed');
      });
      this.#server = server;
    } else {
      this.#server = createServer(accept);
    }
    acceptedSocketOptions(this.#server, true);
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.#server, host, port);
  }

  /** Stops accepting; open connections are left to the broker. */
  async close(): Promise<void> {
    await closeServer(this.#server);
  }
}

import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Broker } from '../broker.js';
import { closeServer, listenOn } from '../../server-lifecycle.js';

/** MQTT over plain TCP: each socket becomes a broker connection. */
export class TcpListener {
  readonly #server: Server;

  constructor(broker: Broker) {
    this.#server = createServer({ noDelay: true }, (socket) => {
      broker.accept(socket, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`);
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.#server, host, port);
  }

  /** Stops accepting; open connections are left to the broker. */
  async close(): Promise<void> {
    await closeServer(this.#server);
  }
}

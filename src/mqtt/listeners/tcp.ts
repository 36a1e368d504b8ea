import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Broker } from '../broker.js';

/** MQTT over plain TCP: each socket becomes a broker connection. */
export class TcpListener {
  readonly #server: Server;

  constructor(broker: Broker) {
    this.#server = createServer({ noDelay: true }, (socket) => {
      broker.accept(socket, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`);
    });
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return this.#server.address() as AddressInfo;
  }

  /** Stops accepting; open connections are left to the broker. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) =>
      this.#server.close(() => {
        resolve();
      }),
    );
  }
}

/**
 * A TCP proxy for fault injection: listens on a port and forwards every connection to a target.
 * pause() stops all traffic without closing anything: existing connections are no longer read
 * in either direction (what is in flight stays in the kernel's buffers) and new connections are
 * accepted but not forwarded. resume() lets everything flow again, in order.
 */
import net, { type Server, type Socket } from 'node:net';

export interface TcpProxyOptions {
  target: { host: string; port: number };
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  host?: string;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
  /** Data handlers attached: only then may the sockets flow. */
  forwarding: boolean;
}

export class TcpProxy {
  readonly #server: Server;
  #target: { host: string; port: number };
  readonly #pairs = new Set<Pair>();
  #paused = false;
  /** Bytes forwarded client → target and target → client. */
  bytesUp = 0;
  bytesDown = 0;
  connections = 0;

  private constructor(server: Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
  }

  static async start(options: TcpProxyOptions): Promise<TcpProxy> {
    const server = net.createServer({ pauseOnConnect: true });
    const proxy = new TcpProxy(server, options.target);
    server.on('connection', (socket) => {
      proxy.#accept(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy not listening');
    return address.port;
  }

  /** Where later connections are forwarded (e.g. a Kafka started after the proxy). */
  retarget(target: { host: string; port: number }): void {
    this.#target = target;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Connections currently open through the proxy. */
  get openConnections(): number {
    return this.#pairs.size;
  }

  /** Stops all traffic; connections stay open. */
  pause(): void {
    this.#paused = true;
    for (const { client, upstream } of this.#pairs) {
      client.pause();
      upstream?.pause();
    }
    // (a connection still connecting upstream starts paused: see #connectUpstream)
  }

  /** Lets traffic flow again, and forwards connections accepted meanwhile. */
  resume(): void {
    this.#paused = false;
    for (const pair of this.#pairs) {
      if (pair.upstream === undefined) this.#connectUpstream(pair);
      else if (pair.forwarding) {
        pair.client.resume();
        pair.upstream.resume();
      }
    }
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream?.destroy();
    }
    this.#pairs.clear();
    await new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
    });
  }

  #forward(from: Socket, to: Socket, count: (bytes: number) => void): void {
    from.pause();
    from.on('data', (chunk: Buffer) => {
      count(chunk.length);
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!this.#paused) from.resume();
    });
    from.on('end', () => {
      to.end();
    });
  }

  #accept(client: Socket): void {
    this.connections += 1;
    const pair: Pair = { client, upstream: undefined, forwarding: false };
    this.#pairs.add(pair);
    client.setNoDelay(true);
    client.on('error', () => undefined);
    client.on('close', () => {
      pair.upstream?.destroy();
      this.#pairs.delete(pair);
    });
    if (!this.#paused) this.#connectUpstream(pair);
  }

  #connectUpstream(pair: Pair): void {
    const { client } = pair;
    if (client.destroyed) return;
    const upstream = net.connect(this.#target);
    pair.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', () => undefined);
    upstream.on('close', () => {
      client.destroy();
    });
    upstream.on('connect', () => {
      // Not pipe(): pipe() resumes a source when its destination drains, even while paused.
      this.#forward(client, upstream, (bytes) => (this.bytesUp += bytes));
      this.#forward(upstream, client, (bytes) => (this.bytesDown += bytes));
      pair.forwarding = true;
      if (!this.#paused) {
        client.resume();
        upstream.resume();
      }
    });
  }
}

import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TlsOptions } from 'node:tls';
import { certificateName, type CertificateIdentity } from './certificate-identity.js';
import { createWebSocketStream, WebSocketServer, type WebSocket } from 'ws';
import type { Broker } from '../broker.js';
import { closeServer, listenOn } from '../../server-lifecycle.js';
import { acceptedSocketOptions } from './accepted-socket-options.js';

export interface WebSocketListenerOptions {
  /** The only URL path served, e.g. `/mqtt`. */
  path: string;
  /** The broker's largest MQTT packet; WebSocket messages may be a little larger. */
  maxPacketSize: number;
  /** Certificate and key: secure WebSocket (wss). */
  tls?: TlsOptions;
  /** What a verified client certificate tells of its client (wss only). */
  identity?: CertificateIdentity;
}

/** Subprotocols accepted, preferred first: MQTT 3.1.1 / 5, and `mqttv3.1` for old clients. */
const SUBPROTOCOLS = ['mqtt', 'mqttv3.1'];
/** Room for framing beyond one packet of the maximum size. */
const MESSAGE_SLACK = 1024;

/**
 * MQTT over WebSocket [MQTT-6.0.0], or secure WebSocket with `tls`: binary
 * messages on one path, with the `mqtt` subprotocol (or none); each WebSocket
 * becomes a broker connection.
 */
export class WebSocketListener {
  readonly #server: Server;
  readonly #wss: WebSocketServer;

  constructor(broker: Broker, options: WebSocketListenerOptions) {
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPacketSize + MESSAGE_SLACK,
      handleProtocols: (offered) => SUBPROTOCOLS.find((protocol) => offered.has(protocol)) ?? false,
    });
    const plainRequest: RequestListener = (request, response) => {
      // plain HTTP: only upgrades are served
      response.writeHead(pathOf(request) === options.path ? 426 : 404, { Connection: 'close' });
      response.end();
    };
    this.#server = options.tls
      ? createHttpsServer(options.tls, plainRequest)
      : createServer(plainRequest);
    // TCP_NODELAY: the HTTP server's own default, and ws sets it on upgraded sockets
    acceptedSocketOptions(this.#server, false);
    this.#server.on('tlsClientError', (error: Error) => {
      broker.log.debug({ err: error }, 'TLS handshake failed');
    });
    this.#server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (pathOf(request) !== options.path) {
        refuse(socket, 404, 'Not Found');
        return;
      }
      const offered = request.headers['sec-websocket-protocol'];
      const protocols = offered?.split(',').map((protocol) => protocol.trim()) ?? [];
      if (offered !== undefined && !protocols.some((protocol) => SUBPROTOCOLS.includes(protocol))) {
        refuse(socket, 400, 'Bad Request');
        return;
      }
      this.#wss.handleUpgrade(request, socket, head, (ws) => {
        const remote = `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? 0}`;
        const name = certificateName(request.socket, options.identity ?? 'none');
        broker.accept(toStream(ws, broker), remote, name);
      });
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.#server, host, port);
  }

  /** Stops accepting; open connections are left to the broker. */
  async close(): Promise<void> {
    this.#wss.close();
    await closeServer(this.#server);
  }
}

/** The WebSocket as a byte stream; closing either one closes the other. */
function toStream(ws: WebSocket, broker: Broker): Duplex {
  const stream = createWebSocketStream(ws);
  // createWebSocketStream listens only once; later errors must not go uncaught
  ws.on('error', (error) => {
    broker.log.debug({ err: error }, 'websocket error');
  });
  stream.on('error', (error) => {
    broker.log.debug({ err: error }, 'websocket stream error');
  });
  // the stream alone would only end, and emit 'close' once its writable side is done too
  ws.on('close', () => stream.destroy());
  // [MQTT-6.0.0-1] MQTT goes in binary messages; anything else closes the connection
  ws.prependListener('message', (_data, isBinary) => {
    if (!isBinary) stream.destroy();
  });
  return stream;
}

function pathOf(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function refuse(socket: Duplex, status: number, reason: string): void {
  socket.on('error', () => undefined);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.once('finish', () => socket.destroy());
}

import { readFileSync, existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { connect as connectTcp, createServer, Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { Broker } from '../../../src/mqtt/broker.js';
import {
  acceptedSocketOptions,
  TCP_KEEPALIVE_DELAY_MS,
} from '../../../src/mqtt/listeners/accepted-socket-options.js';
import { TcpListener } from '../../../src/mqtt/listeners/tcp.js';
import { WebSocketListener } from '../../../src/mqtt/listeners/websocket.js';
import { createTestCertificates, type TestCertificates } from '../../support/certificates.js';

/*
 * Every accepted socket has TCP keepalive on, whatever the listener. On Linux it is seen in the
 * kernel's keepalive timer on that connection in /proc/net/tcp (set once on the listening socket,
 * which accepted ones inherit); elsewhere as the setKeepAlive call on the server-side socket.
 */

let certificates: TestCertificates;
let tls: { cert: Buffer; key: Buffer };

beforeAll(async () => {
  certificates = await createTestCertificates();
  tls = {
    cert: await readFile(certificates.serverCertFile),
    key: await readFile(certificates.serverKeyFile),
  };
});

afterAll(async () => {
  await rm(certificates.folder, { recursive: true, force: true });
});

/** A broker that only keeps the sockets it is given (in `accepted`). */
function fakeBroker(accepted: Socket[] = []): Broker {
  const accept = vi.fn((socket: Socket) => {
    socket.on('error', () => undefined);
    accepted.push(socket);
  });
  return { accept, log: pino({ level: 'silent' }) } as unknown as Broker;
}

interface Listening {
  listen(host: string, port: number): Promise<{ port: number }>;
  close(): Promise<void>;
}

/** Local port of the client socket once it is connected (and, for TLS/WebSocket, set up). */
type Dial = (port: number) => Promise<{ localPort: number; close(): void }>;

const dialTcp: Dial = (port) =>
  new Promise((resolve, reject) => {
    const socket = connectTcp({ host: '127.0.0.1', port }, () => {
      resolve({ localPort: socket.localPort ?? 0, close: () => socket.destroy() });
    });
    socket.once('error', reject);
  });

const dialTls: Dial = (port) =>
  new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, ca: certificates.ca }, () => {
      resolve({ localPort: socket.localPort ?? 0, close: () => socket.destroy() });
    });
    socket.once('error', reject);
  });

const dialWebSocket =
  (secure: boolean): Dial =>
  (port) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`${secure ? 'wss' : 'ws'}://127.0.0.1:${port}/mqtt`, 'mqtt', {
        ca: certificates.ca,
      });
      ws.once('open', () => {
        const socket = (ws as unknown as { _socket: Socket })._socket;
        resolve({
          localPort: socket.localPort ?? 0,
          close: () => {
            ws.terminate();
          },
        });
      });
      ws.once('error', reject);
    });

const cases: { name: string; make: (broker: Broker) => Listening; dial: Dial }[] = [
  { name: 'TCP', make: (broker) => new TcpListener(broker), dial: dialTcp },
  { name: 'TLS', make: (broker) => new TcpListener(broker, tls), dial: dialTls },
  {
    name: 'WebSocket',
    make: (broker) => new WebSocketListener(broker, { path: '/mqtt', maxPacketSize: 1024 }),
    dial: dialWebSocket(false),
  },
  {
    name: 'secure WebSocket',
    make: (broker) => new WebSocketListener(broker, { path: '/mqtt', maxPacketSize: 1024, tls }),
    dial: dialWebSocket(true),
  },
];

describe('TCP keepalive on accepted sockets', () => {
  it.each(cases)('$name: the server side of the connection has keepalive on', async (c) => {
    const setKeepAlive = vi.spyOn(Socket.prototype, 'setKeepAlive');
    const listener = c.make(fakeBroker());
    const { port } = await listener.listen('127.0.0.1', 0);
    const client = await c.dial(port);
    try {
      const timer = await keepAliveTimer(port, client.localPort);
      if (timer === undefined) {
        const serverSide = setKeepAlive.mock.contexts.findIndex(
          (socket) => (socket as Socket).remotePort === client.localPort,
        );
        expect(serverSide).not.toBe(-1);
        expect(setKeepAlive.mock.calls[serverSide]).toEqual([true, TCP_KEEPALIVE_DELAY_MS]);
      } else {
        // "tr" 2: the keepalive timer runs; it fires within the delay (in 1/100 s)
        expect(timer.kind).toBe(2);
        expect(timer.ticks).toBeGreaterThan((TCP_KEEPALIVE_DELAY_MS / 10) * 0.8);
        expect(timer.ticks).toBeLessThanOrEqual(TCP_KEEPALIVE_DELAY_MS / 10);
      }
    } finally {
      setKeepAlive.mockRestore();
      client.close();
      await listener.close();
    }
  });

  it.runIf(process.platform === 'linux')(
    'on Linux, keepalive and TCP_NODELAY are set once on the listening socket, not per connection',
    async () => {
      const setKeepAlive = vi.spyOn(Socket.prototype, 'setKeepAlive');
      const setNoDelay = vi.spyOn(Socket.prototype, 'setNoDelay');
      const accepted: Socket[] = [];
      const listener = new TcpListener(fakeBroker(accepted));
      const { port } = await listener.listen('127.0.0.1', 0);
      const client = await dialTcp(port);
      try {
        const serverSide = await vi.waitFor(() => {
          expect(accepted).toHaveLength(1);
          return accepted[0] as Socket;
        });
        expect(setKeepAlive).not.toHaveBeenCalled();
        expect(setNoDelay).not.toHaveBeenCalled();
        expect((await keepAliveTimer(port, client.localPort))?.kind).toBe(2);
        expect(await tcpNoDelay(serverSide)).toBe(1);
        // given to a child as its stdio, the socket no longer reads: its close is not seen
        serverSide.destroy();
      } finally {
        setKeepAlive.mockRestore();
        setNoDelay.mockRestore();
        client.close();
        await listener.close();
      }
    },
  );

  it('a listening socket without options of its own (cluster workers): set per connection', async () => {
    const setKeepAlive = vi.spyOn(Socket.prototype, 'setKeepAlive');
    const setNoDelay = vi.spyOn(Socket.prototype, 'setNoDelay');
    const server = createServer();
    // as the cluster module's handle in a worker: no socket options
    server.on('listening', () => {
      Object.assign((server as unknown as { _handle: object })._handle, {
        setKeepAlive: undefined,
      });
    });
    acceptedSocketOptions(server, true);
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const client = await dialTcp(port);
    try {
      const socket = await accepted;
      expect(setKeepAlive.mock.contexts).toContain(socket);
      expect(setKeepAlive.mock.calls[setKeepAlive.mock.contexts.indexOf(socket)]).toEqual([
        true,
        TCP_KEEPALIVE_DELAY_MS,
      ]);
      expect(setNoDelay.mock.contexts).toContain(socket);
      expect(setNoDelay.mock.calls[setNoDelay.mock.contexts.indexOf(socket)]).toEqual([true]);
    } finally {
      setKeepAlive.mockRestore();
      setNoDelay.mockRestore();
      client.close();
      server.close();
    }
  });
});

/** The kernel's timer of the connection once data just sent is acknowledged (see kernelTimer). */
async function keepAliveTimer(
  serverPort: number,
  clientPort: number,
): Promise<{ kind: number; ticks: number } | undefined> {
  // data just sent may still run the retransmission timer (1) until the client acknowledges it
  let timer = kernelTimer(serverPort, clientPort);
  for (let tries = 0; timer?.kind === 1 && tries < 50; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    timer = kernelTimer(serverPort, clientPort);
  }
  return timer;
}

/** TCP_NODELAY of a socket of this process, read by getsockopt in a child given its descriptor. */
async function tcpNoDelay(socket: Socket): Promise<number> {
  const child = spawn(
    'python3',
    [
      '-c',
      'import socket; print(socket.socket(fileno=3).getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))',
    ],
    { stdio: ['ignore', 'pipe', 'inherit', socket] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // 'exit': 'close' would wait for the socket too, which stays open
  await new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve) => setImmediate(resolve));
  return Number(output.trim());
}

/**
 * The timer of the server's end of 127.0.0.1:serverPort ↔ 127.0.0.1:clientPort from Linux's
 * /proc/net/tcp (kind 2 is keepalive, with the ticks until it fires); undefined elsewhere.
 */
function kernelTimer(
  serverPort: number,
  clientPort: number,
): { kind: number; ticks: number } | undefined {
  if (!existsSync('/proc/net/tcp')) return undefined;
  const hex = (port: number): string => port.toString(16).toUpperCase().padStart(4, '0');
  const line = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .map((row) => row.trim().split(/\s+/))
    .find(
      (fields) =>
        fields[1] === `0100007F:${hex(serverPort)}` && fields[2] === `0100007F:${hex(clientPort)}`,
    );
  const [kind = '', ticks = ''] = line?.[5]?.split(':') ?? [];
  expect(line, 'the connection in /proc/net/tcp').toBeDefined();
  return { kind: Number.parseInt(kind, 16), ticks: Number.parseInt(ticks, 16) };
}

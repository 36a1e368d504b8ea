/**
 * HAProxy (Debian's `haproxy` package) as a TCP load balancer in front of several bridges, the
 * way a fleet is deployed: one address for the devices, connections spread over the bridges,
 * a bridge that stops answering taken out by health checks. Its admin socket tells which bridge
 * a client's connection went to and what HAProxy thinks of each bridge.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { findFreePort } from '../../scripts/kafka/local-kafka.js';
import { waitFor } from './wait-for.js';

/** The haproxy binary: on the PATH, or where Debian puts it; undefined when not installed. */
export function haproxyBinary(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' });
  const onPath = found.status === 0 ? found.stdout.trim() : '';
  if (onPath !== '') return onPath;
  return existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : undefined;
}

export interface HaproxyServer {
  /** Its name in HAProxy (and in serverOf()). */
  name: string;
  port: number;
  host?: string;
}

export interface HaproxyOptions {
  servers: HaproxyServer[];
  /** Default roundrobin. */
  balance?: 'roundrobin' | 'leastconn';
  /** Frontend port; default a free one. */
  port?: number;
}

/** What HAProxy's health checks make of a server ("UP", "DOWN", "UP 1/2", "MAINT"…). */
export interface ServerStatus {
  status: string;
  /** Connections to it now. */
  current: number;
  /** Connections to it so far. */
  total: number;
}

const live = new Set<Haproxy>();

/** Runs `cleanup` when the current test finishes; a no-op outside a test. */
function afterThisTest(cleanup: () => Promise<unknown>): void {
  try {
    onTestFinished(async () => {
      await cleanup();
    });
  } catch {
    // not inside a test (beforeAll): the caller stops it, or stopAllHaproxies() does
  }
}

function config(options: HaproxyOptions, port: number, socket: string): string {
  return [
    'global',
    `  stats socket ${socket} mode 600 level admin`,
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    // a connection to a bridge that just died goes to another one
    '  retries 3',
    '  option redispatch 1',
    'frontend mqtt',
    `  bind 127.0.0.1:${port}`,
    '  default_backend bridges',
    'backend bridges',
    `  balance ${options.balance ?? 'roundrobin'}`,
    ...options.servers.map(
      ({ name, host = '127.0.0.1', port: serverPort }) =>
        `  server ${name} ${host}:${serverPort} check inter 500 fall 2 rise 1`,
    ),
    '',
  ].join('\n');
}

/** `haproxy -f <cfg> -db` as a child process. */
export class Haproxy {
  readonly child: ChildProcess;
  readonly port: number;
  readonly exited: Promise<void>;
  output = '';
  readonly #folder: string;
  readonly #socket: string;
  #running = true;

  private constructor(child: ChildProcess, port: number, folder: string, socket: string) {
    this.child = child;
    this.port = port;
    this.#folder = folder;
    this.#socket = socket;
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        this.#running = false;
        resolve();
      });
    });
  }

  /** Starts HAProxy and resolves once it answers on its admin socket (its frontend is bound). */
  static async start(options: HaproxyOptions): Promise<Haproxy> {
    const binary = haproxyBinary();
    if (binary === undefined) throw new Error('haproxy is not installed (apt-get install haproxy)');
    const folder = await mkdtemp(path.join(tmpdir(), 'haproxy-'));
    const socket = path.join(folder, 'admin.sock');
    const port = options.port ?? (await findFreePort());
    const file = path.join(folder, 'haproxy.cfg');
    await writeFile(file, config(options, port, socket));
    const child = spawn(binary, ['-f', file, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const haproxy = new Haproxy(child, port, folder, socket);
    live.add(haproxy);
    afterThisTest(() => haproxy.stop());
    try {
      await waitFor(
        async () => {
          if (!haproxy.#running) throw new Error('exited');
          return (await haproxy.#command('show info')).includes('Pid:');
        },
        { timeoutMs: 10_000, intervalMs: 50, what: 'haproxy to start' },
      );
    } catch (error) {
      await haproxy.stop();
      throw new Error(`haproxy did not start:\n${haproxy.output.slice(-2000)}`, { cause: error });
    }
    return haproxy;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Each server's state, by name. */
  async servers(): Promise<Map<string, ServerStatus>> {
    const lines = (await this.#command('show stat')).split('\n').filter((line) => line !== '');
    const header = (lines[0] ?? '').replace(/^# /, '').split(',');
    const column = (name: string) => header.indexOf(name);
    const servers = new Map<string, ServerStatus>();
    for (const line of lines.slice(1)) {
      const fields = line.split(',');
      const name = fields[column('svname')] ?? '';
      if (fields[column('pxname')] !== 'bridges' || name === 'BACKEND') continue;
      servers.set(name, {
        status: fields[column('status')] ?? '',
        current: Number(fields[column('scur')]),
        total: Number(fields[column('stot')]),
      });
    }
    return servers;
  }

  /** Waits until HAProxy's checks see every server named (default: all) UP, or DOWN. */
  async waitForServers(state: 'UP' | 'DOWN', names?: string[], timeoutMs = 15_000): Promise<void> {
    await waitFor(
      async () => {
        const servers = await this.servers();
        const wanted = names ?? [...servers.keys()];
        return wanted.every((name) => servers.get(name)?.status === state);
      },
      { timeoutMs, intervalMs: 100, what: `haproxy to see ${names?.join(', ') ?? 'all'} ${state}` },
    );
  }

  /**
   * The server a client connection went to, from the client's local port (a connection HAProxy
   * has not connected onwards yet: undefined).
   */
  async serverOf(clientPort: number): Promise<string | undefined> {
    for (const line of (await this.#command('show sess')).split('\n')) {
      if (!line.includes(` src=127.0.0.1:${clientPort} `)) continue;
      const server = / srv=(\S+)/.exec(line)?.[1];
      if (server !== undefined && server !== '<none>') return server;
    }
    return undefined;
  }

  /** Stops HAProxy at once (SIGTERM: every connection closed), then removes its folder. */
  async stop(): Promise<void> {
    if (this.#running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      await this.exited;
      clearTimeout(timer);
    }
    live.delete(this);
    await rm(this.#folder, { recursive: true, force: true });
  }

  /** One command on the admin socket, its whole answer. */
  #command(command: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let answer = '';
      const socket = net.connect(this.#socket);
      socket.setTimeout(5_000, () => socket.destroy(new Error(`haproxy: ${command}: no answer`)));
      socket.on('connect', () => socket.write(`${command}\n`));
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      socket.on('error', reject);
      socket.on('close', () => {
        resolve(answer);
      });
    });
  }
}

/** Stops every HAProxy still running (for afterAll). */
export async function stopAllHaproxies(): Promise<void> {
  await Promise.all([...live].map((haproxy) => haproxy.stop()));
}

process.once('exit', () => {
  for (const haproxy of live) if (haproxy.running) haproxy.child.kill('SIGKILL');
});

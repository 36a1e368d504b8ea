/**
 * An idle MQTT client with a short keep alive in its own process, so that a busy test worker
 * (thousands of publishes) cannot make it miss its own PINGs: it tells whether the bridge keeps
 * answering PINGREQ and keeps the connection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { waitFor } from './wait-for.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const SCRIPT = `
import mqtt from 'mqtt';
const [port, clientId, keepalive] = process.argv.slice(1);
const say = (event, extra = {}) => process.stdout.write(JSON.stringify({ event, at: Date.now(), ...extra }) + '\\n');
const client = mqtt.connect({ host: '127.0.0.1', port: Number(port), clientId, protocolVersion: 5,
  keepalive: Number(keepalive), reconnectPeriod: 0, connectTimeout: 10000 });
client.on('connect', () => say('connect'));
client.on('packetreceive', (packet) => { if (packet.cmd === 'pingresp') say('pingresp'); });
client.on('disconnect', (packet) => say('disconnect', { reasonCode: packet.reasonCode }));
client.on('error', (error) => say('error', { message: error.message }));
client.on('close', () => say('close'));
process.on('SIGTERM', () => client.end(true, () => process.exit(0)));
`;

interface WatcherEvent {
  event: 'connect' | 'pingresp' | 'disconnect' | 'error' | 'close';
  at: number;
  reasonCode?: number;
  message?: string;
}

export class PingWatcher {
  readonly #child: ChildProcess;
  #output = '';

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.stdout?.on('data', (chunk: Buffer) => (this.#output += chunk.toString()));
  }

  /** Starts the watcher and waits for its CONNACK. */
  static async start(port: number, clientId: string, keepaliveSeconds = 1): Promise<PingWatcher> {
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', SCRIPT, String(port), clientId, String(keepaliveSeconds)],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const watcher = new PingWatcher(child);
    try {
      onTestFinished(() => {
        watcher.stop();
      });
    } catch {
      // outside a test: the caller stops it
    }
    await waitFor(() => watcher.events().some((event) => event.event === 'connect'), {
      timeoutMs: 15_000,
      what: 'the ping watcher to connect',
    });
    return watcher;
  }

  events(): WatcherEvent[] {
    return this.#output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as WatcherEvent);
  }

  /** PINGRESPs received between `from` and `to` (Date.now() values). */
  pongsBetween(from: number, to: number): number {
    return this.events().filter(
      (event) => event.event === 'pingresp' && event.at >= from && event.at <= to,
    ).length;
  }

  /** Events other than connect/pingresp: the connection ended or failed. */
  troubles(): string[] {
    return this.events()
      .filter((event) => event.event !== 'connect' && event.event !== 'pingresp')
      .map(
        (event) =>
          `${event.event}${event.reasonCode !== undefined ? ` 0x${event.reasonCode.toString(16)}` : ''}${event.message ? ` ${event.message}` : ''}`,
      );
  }

  stop(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGKILL');
    }
  }
}

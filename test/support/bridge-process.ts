/**
 * The bridge as a real child process (`node --import tsx src/cli.ts start`), for tests that
 * signal it (SIGTERM, SIGKILL), restart it, or measure its memory. Its JSON log lines are kept.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { waitFor } from './wait-for.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface BridgeProcessOptions {
  /** Kafka bootstrap servers (BRIDGE_KAFKA_BROKERS). */
  brokers: string;
  /** The only mapping file, as YAML text. */
  mappings: string;
  /** MQTT TCP port; 0 (default) picks one. Give a fixed one to restart on the same port. */
  mqttPort?: number;
  /** More BRIDGE_* variables (they win over the defaults here). */
  env?: Record<string, string>;
  /** How long start-up may take; default 30 s. */
  startTimeoutMs?: number;
  /**
   * What start() waits for: the MQTT listeners (default), or only the HTTP server (a bridge
   * that cannot get into Kafka serves health, not MQTT).
   */
  until?: 'listening' | 'http';
  /** More arguments of `start` (e.g. --workers 2). */
  args?: string[];
}

/** What /health/ready answered. */
export interface Health {
  status: number;
  reason?: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() at exit. */
  at: number;
}

interface LogLine {
  level?: number;
  msg?: string;
  [field: string]: unknown;
}

const live = new Set<BridgeProcess>();

/** Runs `cleanup` when the current test finishes; a no-op outside a test. */
function afterThisTest(cleanup: () => Promise<unknown>): void {
  try {
    onTestFinished(async () => {
      await cleanup();
    });
  } catch {
    // not inside a test (beforeAll): the caller stops it, or stopAllBridgeProcesses() does
  }
}

export class BridgeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  stdout = '';
  stderr = '';
  mqttPort = 0;
  httpUrl = '';
  readonly #folder: string;
  #exit: Exit | undefined;

  private constructor(child: ChildProcess, folder: string) {
    if (child.pid === undefined) throw new Error('bridge process has no pid');
    this.child = child;
    this.pid = child.pid;
    this.#folder = folder;
    child.stdout?.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal, at: Date.now() };
        resolve(this.#exit);
      });
    });
  }

  /** Starts the CLI and resolves once it listens (ports known). */
  static async start(options: BridgeProcessOptions): Promise<BridgeProcess> {
    const folder = await mkdtemp(path.join(tmpdir(), 'bridge-process-'));
    await writeFile(path.join(folder, 'rules.yaml'), options.mappings);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'start', '--mappings', folder, ...(options.args ?? [])],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH ?? '',
          BRIDGE_KAFKA_BROKERS: options.brokers,
          BRIDGE_MQTT_HOST: '127.0.0.1',
          BRIDGE_MQTT_PORT: String(options.mqttPort ?? 0),
          BRIDGE_WEBSOCKET_ENABLED: 'false',
          BRIDGE_HTTP_HOST: '127.0.0.1',
          BRIDGE_HTTP_PORT: '0',
          BRIDGE_MAPPINGS_WATCH: 'false',
          BRIDGE_DOWNLINK_START_DELAY_MS: '0',
          BRIDGE_LOG_LEVEL: 'info',
          ...options.env,
        },
      },
    );
    const bridge = new BridgeProcess(child, folder);
    live.add(bridge);
    afterThisTest(() => bridge.stop());
    try {
      const message =
        options.until === 'http' ? 'health and metrics listening' : 'bridge listening';
      // a bridge that exits (a refused start) ends the wait at once
      let started = false;
      const listening = await Promise.race([
        waitFor(() => bridge.logLines().find((line) => line.msg === message), {
          timeoutMs: options.startTimeoutMs ?? 30_000,
          intervalMs: 50,
          what: message,
        }).finally(() => {
          started = true;
        }),
        bridge.exited.then(() => {
          if (!started) throw new Error('exited');
          return undefined;
        }),
      ]);
      const { mqtt, http } = listening as { mqtt?: { port: number }; http: { port: number } };
      bridge.mqttPort = mqtt?.port ?? 0;
      bridge.httpUrl = `http://127.0.0.1:${http.port}`;
    } catch (error) {
      await bridge.stop();
      throw new Error(
        `bridge process did not start (${bridge.#exit ? `exit ${bridge.#exit.code ?? bridge.#exit.signal}` : 'still running'}):\n` +
          `${bridge.stderr.slice(-2000)}\n${bridge.stdout.slice(-2000)}`,
        { cause: error },
      );
    }
    return bridge;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** Parsed JSON log lines so far. */
  logLines(): LogLine[] {
    const lines: LogLine[] = [];
    for (const text of this.stdout.split('\n')) {
      if (!text.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        // a line still being written
      }
    }
    return lines;
  }

  /** Warn/error log lines, "msg (count)" each, for reports. */
  problems(): string[] {
    const counts = new Map<string, number>();
    for (const line of this.logLines()) {
      if ((line.level ?? 0) < 40) continue;
      const message = `${line.level === 40 ? 'warn' : 'error'}: ${line.msg ?? '?'}`;
      counts.set(message, (counts.get(message) ?? 0) + 1);
    }
    return [...counts].map(([message, count]) => `${message} (×${count})`);
  }

  /** Resident set size in bytes (VmRSS from /proc). */
  rssBytes(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    if (kb === undefined) throw new Error(`no VmRSS for ${this.pid}`);
    return Number(kb) * 1024;
  }

  /** A counter/gauge from /metrics, summed over its labels (or one `name{label="v"}`). */
  async metric(name: string): Promise<number> {
    const text = await (await fetch(`${this.httpUrl}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  }

  /** HTTP status of /health/ready (0 if the request failed). */
  async readiness(): Promise<number> {
    return (await this.health()).status;
  }

  /** /health/ready: its status (0 if the request failed) and, when not ready, the reason. */
  async health(): Promise<Health> {
    try {
      const response = await fetch(`${this.httpUrl}/health/ready`, {
        signal: AbortSignal.timeout(2_000),
      });
      const body = (await response.json()) as { reason?: string };
      return { status: response.status, ...(body.reason !== undefined && { reason: body.reason }) };
    } catch {
      return { status: 0 };
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGKILL if still running, wait for the exit, remove the mappings folder. */
  async stop(): Promise<void> {
    if (this.running) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
    live.delete(this);
    await rm(this.#folder, { recursive: true, force: true });
  }
}

/** Stops every bridge process still running (for afterAll). */
export async function stopAllBridgeProcesses(): Promise<void> {
  await Promise.all([...live].map((bridge) => bridge.stop()));
}

process.once('exit', () => {
  for (const bridge of live) if (bridge.running) bridge.child.kill('SIGKILL');
});

/**
 * The suite's helper processes (load generators, bare producers) speak JSON lines: a child
 * prints {"ready":true} once set up (connected, subscribed), waits for `go` on stdin, prints
 * {"result":{...}} when done, and exits (an idle generator first waits for `close`). Starting
 * every process before the first `go` keeps their start-up (tsx, connecting) out of the time
 * measured, and lets several of them start at the same moment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

// ---------------------------------------------------------------------------------------------
// The child's side
// ---------------------------------------------------------------------------------------------

const commands: string[] = [];
const waiting: ((command: string) => void)[] = [];
let listening = false;
let stdinOpen = true;

/** Reads stdin only once asked for a command: the suite imports this module too. */
function listen(): void {
  if (listening) return;
  listening = true;
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const waiter = waiting.shift();
    if (waiter) waiter(line.trim());
    else commands.push(line.trim());
  });
  lines.on('close', () => {
    stdinOpen = false;
    for (const waiter of waiting.splice(0)) waiter('close');
  });
}

/** The next command from the suite; `close` once stdin has ended (the suite is gone). */
export function nextCommand(): Promise<string> {
  listen();
  const command = commands.shift();
  if (command !== undefined) return Promise.resolve(command);
  if (!stdinOpen) return Promise.resolve('close');
  return new Promise((resolve) => waiting.push(resolve));
}

/** Announces that set-up is done, and waits for `go`. */
export async function readyThenGo(): Promise<void> {
  process.stdout.write('{"ready":true}\n');
  while ((await nextCommand()) !== 'go') {
    // only `go` starts the run
  }
}

export function report(result: object): void {
  process.stdout.write(`${JSON.stringify({ result })}\n`);
}

/** CPU seconds this process used since `since` (getrusage: the OS's utime + stime). */
export function cpuSecondsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// The suite's side
// ---------------------------------------------------------------------------------------------

/** A helper process started with `node --import tsx script ...args`. */
export class BenchChild<Result> {
  readonly process: ChildProcess;
  readonly ready: Promise<void>;
  readonly result: Promise<Result>;
  readonly exited: Promise<number | null>;

  constructor(script: string, args: string[]) {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.process = child;
    this.exited = new Promise((resolve) => child.once('exit', resolve));
    const died = this.exited.then((code) => {
      throw new Error(`${script} exited (${code ?? 'signal'}) before its result`);
    });
    let onReady: () => void = () => undefined;
    let onResult: (result: Result) => void = () => undefined;
    // a process that dies fails what it has not delivered yet
    this.ready = Promise.race([new Promise<void>((resolve) => (onReady = resolve)), died]);
    this.result = Promise.race([new Promise<Result>((resolve) => (onResult = resolve)), died]);
    // awaited later, or never when an earlier step failed: not unhandled meanwhile
    this.ready.catch(() => undefined);
    this.result.catch(() => undefined);
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const message = JSON.parse(line) as { ready?: true; result?: Result };
      if (message.ready) onReady();
      if (message.result !== undefined) onResult(message.result);
    });
  }

  send(command: string): void {
    this.process.stdin?.write(`${command}\n`);
  }

  /** Ends stdin (an idle generator closes its connections) and waits for the exit. */
  async close(): Promise<void> {
    this.process.stdin?.end();
    await this.exited;
  }

  /** Kills it if it still runs (cleanup after a failure). */
  kill(): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill();
  }
}

/**
 * Starts `count` children, waits until every one is ready, starts them together and resolves
 * with their results and the wall-clock seconds from `go` to the last result.
 */
export async function runTogether<Result>(
  children: BenchChild<Result>[],
  beforeGo: () => void = () => undefined,
): Promise<{ results: Result[]; seconds: number }> {
  try {
    await Promise.all(children.map((child) => child.ready));
    beforeGo();
    const started = performance.now();
    for (const child of children) child.send('go');
    const results = await Promise.all(children.map((child) => child.result));
    return { results, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    for (const child of children) child.kill();
    throw error;
  }
}

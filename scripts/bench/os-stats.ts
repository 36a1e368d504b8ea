/**
 * What the operating system says about a process: CPU time (utime + stime from /proc/PID/stat)
 * and resident memory, for processes the suite did not write (Mosquitto, Kafka's JVM) as much
 * as for the bridge. A wall-clock rate alone on two shared cores mostly measures whoever got
 * the cores; CPU seconds per message do not depend on that.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

const CLOCK_TICKS =
  Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** `pid` and its descendants (the workers of `start --workers N`). */
export function processTree(pid: number): number[] {
  const tree = [pid];
  for (let index = 0; index < tree.length; index++) {
    const one = tree[index] ?? 0;
    try {
      const children = readFileSync(`/proc/${one}/task/${one}/children`, 'utf8').trim();
      if (children !== '') tree.push(...children.split(' ').map(Number));
    } catch {
      // gone meanwhile
    }
  }
  return tree;
}

/** User + system CPU seconds of these processes so far (a process that is gone counts 0). */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // the command name may hold spaces: fields are counted after its closing parenthesis
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / CLOCK_TICKS;
}

/** Resident set size of these processes in bytes (VmRSS). */
export function rssBytes(pids: number[]): number {
  let kilobytes = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      kilobytes += Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kilobytes * 1024;
}

/** CPU seconds of a set of processes from now on. */
export class CpuMeter {
  readonly #start: number;

  constructor(readonly pids: number[]) {
    this.#start = cpuSeconds(pids);
  }

  seconds(): number {
    return cpuSeconds(this.pids) - this.#start;
  }
}

/**
 * The share of the machine's CPU time that was busy (every core; user, nice, system, interrupts,
 * steal: all but idle and I/O wait, from /proc/stat) since it was made: how much of the host a
 * run left for anything else. On two shared cores a latency measured near 100 % is queueing for
 * the cores, whichever process is under test.
 */
export class HostCpuMeter {
  readonly #start = hostCpuTicks();

  busyPercent(): number {
    const end = hostCpuTicks();
    const total = end.total - this.#start.total;
    return total > 0 ? ((end.busy - this.#start.busy) / total) * 100 : 0;
  }
}

function hostCpuTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal (guest time is counted in user already)
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const at = (index: number): number => ticks[index] ?? 0;
  const idle = at(3) + at(4);
  const total = ticks.reduce((sum, one) => sum + one, 0);
  return { busy: total - idle, total };
}

/** The process listening on a local TCP port (Kafka's JVM), if this user may see it. */
export function listeningPid(port: number): number | undefined {
  try {
    const line = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
    const pid = /pid=(\d+)/.exec(line)?.[1];
    return pid === undefined ? undefined : Number(pid);
  } catch {
    return undefined;
  }
}

/** The soft limit of open files of this process (a generator's connections are bounded by it). */
export function openFilesLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  return Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1] ?? 1024);
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGb: number;
  node: string;
  kernel: string;
}

export function describeMachine(): Machine {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  };
}

/**
 * Bytes the processes `pids` have sent on their open TCP connections to `ports` (the kernel's
 * tcp_info, through `ss`): what the bridge wrote to Kafka, whatever library wrote it.
 */
export function tcpBytesSent(pids: number[], ports: number[]): number {
  const filter = ports.map((port) => `dport = :${port}`).join(' or ');
  const text = execFileSync('ss', ['-tinpH', `( ${filter} )`], { encoding: 'utf8' });
  const owners = new Set(pids);
  let bytes = 0;
  let owned = false;
  for (const line of text.split('\n')) {
    const pid = /pid=(\d+)/.exec(line)?.[1];
    if (pid !== undefined) owned = owners.has(Number(pid));
    else if (owned) bytes += Number(/bytes_sent:(\d+)/.exec(line)?.[1] ?? 0);
  }
  return bytes;
}

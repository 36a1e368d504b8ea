/**
 * A load spread over `procs` generator processes (scripts/bench/generator.ts): connections,
 * messages and rate are divided among them, they start together, and their results are summed
 * (latency histograms merged, CPU seconds added).
 */
import { BenchChild, runTogether } from './child.js';
import { LatencyHistogram, type SerializedHistogram } from './histogram.js';

export interface Load {
  mode: 'publish' | 'fixed-rate' | 'subscribe' | 'idle';
  port: number;
  procs: number;
  /** Connections in all. */
  connections: number;
  /** Client ids are <prefix><n>, n from 0 over all processes. */
  prefix: string;
  qos?: 0 | 1;
  window?: number;
  payload?: number;
  telemetry?: boolean;
  /** Messages in all (publish: sent; subscribe: expected). */
  messages?: number;
  /** Publishes per second in all (fixed-rate). */
  rate?: number;
  /** publish: no new publish after this long; fixed-rate: the length of the measured run. */
  seconds?: number;
  /** fixed-rate: the same load first for this long, not measured. */
  warmSeconds?: number;
  spread?: number;
  keepalive?: number;
}

/** What a generator reports; the fields of its mode only. */
export interface GeneratorResult {
  seconds: number;
  cpuSeconds: number;
  acked?: number;
  /** fixed-rate: publishes of the warm-up acknowledged. */
  warmAcked?: number;
  sent?: number;
  skipped?: number;
  received?: number;
  connected?: number;
  firstAt?: number;
  lastAt?: number;
  latency?: SerializedHistogram;
}

export interface LoadOutcome {
  results: GeneratorResult[];
  /** Wall-clock seconds from `go` to the last result. */
  seconds: number;
  /** CPU seconds of all generators (their own getrusage). */
  cpuSeconds: number;
  latency: LatencyHistogram;
  total(field: 'acked' | 'warmAcked' | 'sent' | 'skipped' | 'received' | 'connected'): number;
}

/** The share of `total` of item `index` out of `count`. */
export function shareOf(total: number, count: number, index: number): number {
  return Math.floor(total / count) + (index < total % count ? 1 : 0);
}

/** Generators started and set up (connected, subscribed), waiting for `run`. */
export class Generators {
  readonly children: BenchChild<GeneratorResult>[];

  constructor(load: Load) {
    const procs = Math.max(1, Math.min(load.procs, load.connections));
    let first = 0;
    this.children = Array.from({ length: procs }, (_, proc) => {
      const connections = shareOf(load.connections, procs, proc);
      let messages = 0;
      for (let index = first; index < first + connections; index++) {
        messages += shareOf(load.messages ?? 0, load.connections, index);
      }
      const args: Record<string, string | number | boolean | undefined> = {
        mode: load.mode,
        port: load.port,
        connections,
        prefix: load.prefix,
        first,
        qos: load.qos,
        window: load.window,
        payload: load.payload,
        telemetry: load.telemetry,
        messages,
        rate: load.rate === undefined ? undefined : (load.rate * connections) / load.connections,
        seconds: load.seconds,
        'warm-seconds': load.warmSeconds,
        spread: load.spread,
        keepalive: load.keepalive,
      };
      first += connections;
      return new BenchChild<GeneratorResult>('scripts/bench/generator.ts', toArgs(args));
    });
  }

  /** Waits until all are ready, then starts them together. */
  async run(beforeGo?: () => void): Promise<LoadOutcome> {
    const { results, seconds } = await runTogether(this.children, beforeGo);
    const total = (
      field: 'acked' | 'warmAcked' | 'sent' | 'skipped' | 'received' | 'connected',
    ): number => results.reduce((sum, result) => sum + (result[field] ?? 0), 0);
    return {
      results,
      seconds,
      cpuSeconds: results.reduce((sum, result) => sum + result.cpuSeconds, 0),
      latency: LatencyHistogram.merge(
        results.flatMap((result) => (result.latency ? [result.latency] : [])),
      ),
      total,
    };
  }

  /** Ends them (idle generators close their connections then). */
  async close(): Promise<void> {
    await Promise.all(this.children.map((child) => child.close()));
  }

  kill(): void {
    for (const child of this.children) child.kill();
  }
}

/** Starts generators for `load`, runs it, and waits for their exit. */
export async function runLoad(load: Load, beforeGo?: () => void): Promise<LoadOutcome> {
  const generators = new Generators(load);
  try {
    const outcome = await generators.run(beforeGo);
    await generators.close();
    return outcome;
  } finally {
    generators.kill();
  }
}

function toArgs(values: Record<string, string | number | boolean | undefined>): string[] {
  return Object.entries(values).flatMap(([name, value]) => {
    if (value === undefined || value === false) return [];
    return value === true ? [`--${name}`] : [`--${name}`, String(value)];
  });
}

/**
 * What every scenario shares: the run's options and Kafka, and the measurement of one process
 * under test on one load — CPU from /proc for it and for Kafka, the load's own CPU, latency
 * percentiles over all generators.
 */
import type { BenchKafka } from '../bench-kafka.js';
import { runLoad, type Load, type LoadOutcome } from '../load.js';
import { CpuMeter, rssBytes } from '../os-stats.js';
import { round, type Row, type ScenarioResult } from '../report.js';
import { Skipped, type Server } from '../servers.js';

export interface SuiteOptions {
  /** Generator processes per load. */
  procs: number;
  /** Only these processes under test (`--peer`, the bridge included); empty: all. */
  peers: string[];
  /** Messages of the uplink scenarios (QoS 1 durable, QoS 0). */
  messages: number;
  idleConnections: number;
  downlinkMessages: number;
  ruleMessages: number;
  latencySeconds: number;
  soakMinutes: number;
  /** Publishes per second of the soak: steady, well below the maximum. */
  soakRate: number;
  /** No new publish after this long in a run (a slow peer ends with what it did by then). */
  capSeconds: number;
}

export interface Context {
  options: SuiteOptions;
  kafka: BenchKafka;
  /** Progress, on stderr. */
  log(message: string): void;
  /** Results of the scenarios run so far (latency and soak use the QoS 1 maximum). */
  done: Map<string, ScenarioResult>;
}

export interface Scenario {
  name: string;
  run(context: Context): Promise<ScenarioResult>;
}

/** The uplink rule of every uplink scenario: one rule to a 6-partition topic, key = client id. */
export function uplinkRule(topic: string): string {
  return `uplink:\n  - name: bench\n    from: bench/{device}/data\n    to: { topic: ${topic}, key: '{clientId}' }\n`;
}

/** The QoS 1 durable load of the issue: 50 connections × 32 in flight, 256-byte payloads. */
export function durableLoad(context: Context, port: number, messages: number): Load {
  return {
    mode: 'publish',
    port,
    procs: context.options.procs,
    connections: 50,
    prefix: 'g',
    qos: 1,
    window: 32,
    payload: 256,
    messages,
    seconds: context.options.capSeconds,
  };
}

/** Starts a server, measures it, stops it; a peer that cannot run becomes a skipped row. */
export async function onServer<S extends Server>(
  peer: string,
  start: () => Promise<S>,
  measure: (server: S) => Promise<Row>,
  context: Context,
): Promise<Row> {
  if (!chosen(context, peer)) return notChosen(peer);
  let server: S;
  try {
    server = await start();
  } catch (error) {
    if (!(error instanceof Skipped)) throw error;
    context.log(`${peer}: skipped: ${error.message}`);
    return { peer, skipped: `skipped: ${error.message}` };
  }
  try {
    context.log(`${peer}: running`);
    return await measure(server);
  } finally {
    await server.stop();
  }
}

/** Whether `--peer` leaves this process under test in the run ("bridge" also names "bridge, 10 rules"). */
export function chosen(context: Context, peer: string): boolean {
  const { peers } = context.options;
  return peers.length === 0 || peers.some((name) => peer === name || peer.startsWith(`${name},`));
}

export function notChosen(peer: string): Row {
  return { peer, skipped: 'skipped: not among --peer' };
}

/** CPU of the server and of Kafka from now on. */
export class Meters {
  readonly server: CpuMeter;
  readonly kafka: CpuMeter;

  constructor(server: Server, context: Context, usesKafka: boolean) {
    this.server = new CpuMeter(server.pids());
    this.kafka = new CpuMeter(usesKafka ? context.kafka.pids : []);
  }
}

/** Per-message CPU figures of a run of `count` messages. */
export function cpuFigures(
  meters: Meters,
  outcome: LoadOutcome,
  count: number,
  usesKafka: boolean,
): Pick<Row, 'cpuUs' | 'loadCpuUs' | 'kafkaCpuUs'> {
  const perMessage = (seconds: number): number => round((seconds * 1e6) / Math.max(1, count), 1);
  return {
    cpuUs: perMessage(meters.server.seconds()),
    loadCpuUs: perMessage(outcome.cpuSeconds),
    ...(usesKafka && meters.kafka.pids.length > 0
      ? { kafkaCpuUs: perMessage(meters.kafka.seconds()) }
      : {}),
  };
}

/**
 * A QoS 1 publish load on a server: a short warm-up (connections, JIT, Kafka metadata), then
 * the load measured: acknowledged per second, PUBACK latency, CPU per message. With `topic`
 * (where the server writes), the records it gained over the run too: at least as many as were
 * acknowledged, if acknowledgements come after Kafka has the records.
 */
export async function measureQos1(
  context: Context,
  server: Server,
  load: Load,
  usesKafka: boolean,
  topic?: string,
): Promise<Row> {
  await runLoad({ ...load, prefix: 'warm', messages: Math.min(20_000, load.messages ?? 0) });
  const meters = new Meters(server, context, usesKafka);
  const before = topic === undefined ? 0 : await context.kafka.records(topic);
  const outcome = await runLoad(load);
  const acked = outcome.total('acked');
  const stored = topic === undefined ? undefined : (await context.kafka.records(topic)) - before;
  return {
    peer: server.name,
    count: acked,
    rate: Math.round(acked / outcome.seconds),
    p50Ms: outcome.latency.percentile(50),
    p99Ms: outcome.latency.percentile(99),
    ...cpuFigures(meters, outcome, acked, usesKafka),
    rssMb: Math.round(rssBytes(server.pids()) / 2 ** 20),
    ...(stored === undefined ? {} : { extra: { 'in Kafka': stored } }),
    ...(acked < (load.messages ?? 0)
      ? { note: `stopped after ${context.options.capSeconds} s (the cap)` }
      : {}),
  };
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

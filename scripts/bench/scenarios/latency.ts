/**
 * PUBACK latency at a fixed rate of half the bridge's measured QoS 1 maximum (latency at the
 * maximum is queueing, not the bridge), every server at the same rate; then the bridge and
 * Mosquitto at a quarter. Each row says how busy the host's cores were: the load writes one
 * PUBLISH per write, which costs every process more per message than the pipelined load of the
 * maximum, so half that maximum can keep two shared cores near full.
 */
import { metricByLabel, metricValue } from '../bridge-process.js';
import { runLoad } from '../load.js';
import { HostCpuMeter, rssBytes } from '../os-stats.js';
import { ratiosToPeers, type Row } from '../report.js';
import { startAedesGlue, startBridgeServer, startMosquitto, type Server } from '../servers.js';
import {
  cpuFigures,
  durableLoad,
  Meters,
  measureQos1,
  onServer,
  sleep,
  uplinkRule,
  type Context,
  type Scenario,
} from './context.js';

/**
 * Each generator runs the load this long before its measured seconds, on the same connections:
 * long enough for the generators' and the server's heaps to grow to what the load needs and
 * their code to be optimised (a V8 process's first seconds under a new load see its young
 * generation grow, with long scavenges meanwhile). Skipped, the first two seconds' tail
 * showed in p99.
 */
const WARM_UP_SECONDS = 5;

/** The suffix of the rows at a quarter of the maximum. */
const QUARTER = ' at ¼';

export const latency: Scenario = {
  name: 'latency',
  async run(context) {
    const { kafka } = context;
    const rate = Math.round((await bridgeMaximum(context)) / 2);
    const seconds = context.options.latencySeconds;
    const quarter = Math.round(rate / 2);
    const servers = [
      {
        name: 'bridge',
        start: () =>
          startBridgeServer({ brokers: kafka.brokers, mappings: uplinkRule(kafka.topic) }),
        usesKafka: true,
      },
      { name: 'mosquitto', start: startMosquitto, usesKafka: false },
      {
        name: 'aedes-glue',
        start: async () => startAedesGlue(kafka.brokers, await kafka.newTopic()),
        usesKafka: true,
      },
    ];
    const rowsAt = async (perSecond: number, which: typeof servers): Promise<Row[]> => {
      const rows: Row[] = [];
      for (const { name, start, usesKafka } of which) {
        rows.push(
          await onServer(
            name,
            start,
            (server) => atRate(context, server, perSecond, usesKafka),
            context,
          ),
        );
      }
      return rows;
    };
    const atHalf = await rowsAt(rate, servers);
    // the bridge and Mosquitto at a quarter, for the latency of a server rather than of the queue
    // for the cores: whether the host had cores to spare there too is in the rows' host CPU busy %
    const atQuarter = await rowsAt(quarter, servers.slice(0, 2));
    return {
      name: this.name,
      title: 'PUBACK latency at half the maximum rate',
      parameters:
        `QoS 1 at ${rate.toLocaleString('en-US')} publishes/s in all (half the bridge's QoS 1 maximum) for ${seconds} s ` +
        `after ${WARM_UP_SECONDS} s of the same load on the same connections, not measured, ` +
        `spread over 50 connections from ${context.options.procs} generator processes, 256-byte payloads, the same rule; ` +
        'latency from the write of a PUBLISH to the read of its PUBACK. Per second: PUBACKs; CPU: over the warm-up and the run, per message of both. ' +
        `Rows "${QUARTER}": the same at a quarter of the maximum (${quarter.toLocaleString('en-US')}/s). ` +
        'host CPU busy %: of both cores over the measured seconds, every process (server, generators, Kafka).',
      rows: [...atHalf, ...atQuarter.map((row) => ({ ...row, peer: `${row.peer}${QUARTER}` }))],
      ratios: ratiosToPeers(atHalf),
    };
  },
};

/** The bridge's QoS 1 maximum of this run, or measured now (a shorter run) when not known. */
export async function bridgeMaximum(context: Context): Promise<number> {
  const known = context.done.get('uplink-qos1')?.rows.find((row) => row.peer === 'bridge')?.rate;
  if (known !== undefined) return known;
  context.log('bridge: measuring the QoS 1 maximum first');
  const messages = Math.max(50_000, Math.round(context.options.messages / 4));
  const row = await onServer(
    'bridge',
    () =>
      startBridgeServer({
        brokers: context.kafka.brokers,
        mappings: uplinkRule(context.kafka.topic),
      }),
    (server) => measureQos1(context, server, durableLoad(context, server.port, messages), true),
    context,
  );
  return row.rate ?? 1_000;
}

async function atRate(
  context: Context,
  server: Server,
  rate: number,
  usesKafka: boolean,
): Promise<Row> {
  const load = {
    ...durableLoad(context, server.port, 0),
    mode: 'fixed-rate' as const,
    rate,
    seconds: context.options.latencySeconds,
    warmSeconds: WARM_UP_SECONDS,
  };
  const meters = new Meters(server, context, usesKafka);
  // the bridge's own figures from the end of the warm-up (its event loop delay resets at a scrape)
  let before: Promise<string | undefined> = Promise.resolve(undefined);
  let hostBusy: Promise<number> = Promise.resolve(0);
  const outcome = await runLoad(load, () => {
    const warmedUp = sleep(WARM_UP_SECONDS * 1000);
    before = warmedUp.then(() => server.metrics?.());
    hostBusy = warmedUp.then(async () => {
      const host = new HostCpuMeter();
      await sleep(context.options.latencySeconds * 1000);
      return host.busyPercent();
    });
  });
  const after = await server.metrics?.();
  const atWarmEnd = await before;
  const acked = outcome.total('acked');
  const skipped = outcome.total('skipped');
  return {
    peer: server.name,
    count: acked,
    rate: Math.round(acked / context.options.latencySeconds),
    p50Ms: outcome.latency.percentile(50),
    p99Ms: outcome.latency.percentile(99),
    maxMs: outcome.latency.maxMs,
    // CPU over the whole run, warm-up included, per message of it
    ...cpuFigures(meters, outcome, acked + outcome.total('warmAcked'), usesKafka),
    rssMb: Math.round(rssBytes(server.pids()) / 2 ** 20),
    extra: {
      'host CPU busy %': Math.round(await hostBusy),
      ...(atWarmEnd !== undefined && after !== undefined ? tailInBridge(atWarmEnd, after) : {}),
    },
    ...(skipped > 0
      ? { note: `${skipped} publishes not sent: 1,024 in flight on their connection` }
      : {}),
  };
}

/**
 * Where the tail comes from, from the bridge's histograms over the run: the share of PUBACKs
 * that took over 25 ms inside the bridge (PUBLISH read to PUBACK written; one in 8 sampled)
 * and of produce requests Kafka took over 10 and 50 ms to acknowledge (counted per partition in
 * them, as bridge_kafka_produce_seconds observes); the event loop's delay
 * over the run (prom-client resets it at each scrape).
 */
function tailInBridge(before: string, after: string): Record<string, number> {
  const over = (name: string, le: string): number => {
    const counts = (text: string) => metricByLabel(text, `${name}_bucket`);
    const [start, end] = [counts(before), counts(after)];
    const delta = (bucket: string) => (end[bucket] ?? 0) - (start[bucket] ?? 0);
    const total = delta('+Inf');
    return total > 0 ? Math.round((1 - delta(le) / total) * 10_000) / 100 : 0;
  };
  const milliseconds = (name: string) => Math.round(metricValue(after, name) * 10_000) / 10;
  return {
    'bridge PUBACKs > 25 ms %': over('bridge_mqtt_puback_seconds', '0.025'),
    'Kafka requests > 10 ms %': over('bridge_kafka_produce_seconds', '0.01'),
    'Kafka requests > 50 ms %': over('bridge_kafka_produce_seconds', '0.05'),
    'event loop delay p99 ms': milliseconds('nodejs_eventloop_lag_p99_seconds'),
    'event loop delay max ms': milliseconds('nodejs_eventloop_lag_max_seconds'),
  };
}

/**
 * `--soak`: QoS 1 at a steady rate for minutes; the bridge's heap used (its /metrics) and RSS
 * (/proc) sampled every 2 s. Heap used is a sawtooth (tens of MB between collections), so a line
 * through the samples mostly says where in a cycle they fell; a leak raises what survives a
 * collection. So the fit is through each minute's lowest sample (the heap floor), from the second
 * minute on (the first warms up: pools fill, code is compiled).
 */
import { Generators } from '../load.js';
import { rssBytes } from '../os-stats.js';
import { metricValue } from '../bridge-process.js';
import { round, type Row } from '../report.js';
import { startBridgeServer, type Server } from '../servers.js';
import {
  cpuFigures,
  durableLoad,
  Meters,
  onServer,
  uplinkRule,
  type Context,
  type Scenario,
} from './context.js';

const SAMPLE_MS = 2_000;

export const soak: Scenario = {
  name: 'soak',
  async run(context) {
    const { kafka } = context;
    const rate = context.options.soakRate;
    const minutes = context.options.soakMinutes;
    const row = await onServer(
      'bridge',
      () => startBridgeServer({ brokers: kafka.brokers, mappings: uplinkRule(kafka.topic) }),
      (server) => measure(context, server, () => server.process.metrics(), rate),
      context,
    );
    return {
      name: this.name,
      title: `Soak, ${minutes} minutes`,
      parameters:
        `QoS 1 at ${rate.toLocaleString('en-US')} publishes/s for ${minutes} minutes (50 connections, 256-byte payloads, ` +
        `the same rule); heap used (the bridge's /metrics) and RSS sampled every ${SAMPLE_MS / 1000} s. After the first ` +
        "minute, a line is fitted (least squares) through each minute's lowest heap sample (the heap floor, " +
        'what survives collections) and through the RSS samples; slopes in MB per minute, ± one standard error.',
      rows: [row],
      ratios: {},
    };
  },
};

interface Sample {
  atMinutes: number;
  heapMb: number;
  rssMb: number;
}

async function measure(
  context: Context,
  server: Server,
  metrics: () => Promise<string>,
  rate: number,
): Promise<Row> {
  const seconds = context.options.soakMinutes * 60;
  const generators = new Generators({
    ...durableLoad(context, server.port, 0),
    mode: 'fixed-rate',
    rate,
    seconds,
  });
  const samples: Sample[] = [];
  let sampler: NodeJS.Timeout | undefined;
  try {
    let meters: Meters | undefined;
    let started = 0;
    const sample = async (): Promise<void> => {
      const heap = metricValue(await metrics(), 'nodejs_heap_size_used_bytes');
      samples.push({
        atMinutes: (performance.now() - started) / 60_000,
        heapMb: heap / 2 ** 20,
        rssMb: rssBytes(server.pids()) / 2 ** 20,
      });
    };
    const outcome = await generators.run(() => {
      meters = new Meters(server, context, true);
      started = performance.now();
      sampler = setInterval(() => void sample().catch(() => undefined), SAMPLE_MS);
    });
    const acked = outcome.total('acked');
    const floors = heapFloors(samples);
    const heap = fitLine(floors.map((one) => [one.atMinutes, one.heapMb]));
    const rss = fitLine(
      samples.filter((one) => one.atMinutes >= 1).map((one) => [one.atMinutes, one.rssMb]),
    );
    const meanFloor = floors.reduce((sum, one) => sum + one.heapMb, 0) / Math.max(1, floors.length);
    const span = (floors.at(-1)?.atMinutes ?? 0) - (floors[0]?.atMinutes ?? 0);
    return {
      peer: 'bridge',
      count: acked,
      rate: Math.round(acked / seconds),
      p50Ms: outcome.latency.percentile(50),
      p99Ms: outcome.latency.percentile(99),
      maxMs: outcome.latency.maxMs,
      ...cpuFigures(meters as Meters, outcome, acked, true),
      rssMb: Math.round(rssBytes(server.pids()) / 2 ** 20),
      extra: {
        'heap floor MB': round(meanFloor, 1),
        'heap floor MB/min': round(heap.slope, 3),
        '± MB/min': round(heap.error, 3),
        // what the soak target reads, with the slope's standard error
        'heap floor growth %': round((100 * heap.slope * span) / Math.max(meanFloor, 1e-9), 1),
        'RSS MB/min': round(rss.slope, 3),
      },
      samples: samples.map((one) => ({
        atMinutes: round(one.atMinutes, 2),
        heapMb: round(one.heapMb, 1),
        rssMb: round(one.rssMb, 1),
      })),
    };
  } finally {
    clearInterval(sampler);
    await generators.close();
    generators.kill();
  }
}

/** Each whole minute's lowest heap sample, from the second minute on. */
function heapFloors(samples: Sample[]): Sample[] {
  const byMinute = new Map<number, Sample>();
  for (const one of samples) {
    const minute = Math.floor(one.atMinutes);
    const lowest = byMinute.get(minute);
    if (minute >= 1 && (lowest === undefined || one.heapMb < lowest.heapMb)) {
      byMinute.set(minute, one);
    }
  }
  // the last minute is cut short by the end of the run: fewer samples, a higher floor
  const last = Math.max(...byMinute.keys());
  if (!samples.some((one) => one.atMinutes >= last + 1)) byMinute.delete(last);
  return [...byMinute.values()];
}

/** Least-squares slope of y over x, and its standard error. */
function fitLine(points: [number, number][]): { slope: number; error: number } {
  const n = points.length;
  if (n < 3) return { slope: NaN, error: NaN };
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - meanX) * (y - meanY);
    sxx += (x - meanX) ** 2;
  }
  const slope = sxy / sxx;
  const residuals = points.reduce((sum, [x, y]) => sum + (y - meanY - slope * (x - meanX)) ** 2, 0);
  return { slope, error: Math.sqrt(residuals / (n - 2) / sxx) };
}

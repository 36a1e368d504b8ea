/**
 * Results as the suite prints them (markdown tables: one per scenario with its parameters, then
 * the targets, met or not) and keeps them (JSON with every figure and the ratios to each peer;
 * BENCHMARKS.md and BENCHMARKS.json with --write).
 */
import { writeFile } from 'node:fs/promises';
import { format, resolveConfig } from 'prettier';
import type { Machine } from './os-stats.js';

/** One process under test on one load; absent figures do not apply to it. */
export interface Row {
  /** bridge, mosquitto, aedes-glue, bare-kafkajs, bare-platformatic, or a variant (10 rules). */
  peer: string;
  /** Why it did not run (not installed): printed, never dropped. */
  skipped?: string;
  /** messages (or connections) measured */
  count?: number;
  /** messages (connections) per second */
  rate?: number;
  p50Ms?: number;
  p99Ms?: number;
  maxMs?: number;
  /** CPU µs per message of the process under test (bridge, peer, bare producer) */
  cpuUs?: number;
  /** CPU µs per message of the load generators */
  loadCpuUs?: number;
  /** CPU µs per message of Kafka's broker processes */
  kafkaCpuUs?: number;
  rssMb?: number;
  /** anything else the scenario measures (lost messages, KB per connection, slopes) */
  extra?: Record<string, number>;
  /** what a scenario sampled over time (the soak's heap and RSS): in the JSON only */
  samples?: Record<string, number>[];
  note?: string;
}

export interface ScenarioResult {
  name: string;
  title: string;
  parameters: string;
  rows: Row[];
  /** the bridge's figure ÷ the peer's, per peer: rate and CPU µs per message */
  ratios: Record<string, { rate?: number; cpu?: number }>;
  /** what the ratios divide, when not the bridge by the peer */
  ratioLabel?: string;
}

export interface Target {
  text: string;
  measured: string;
  /** undefined: not measured in this run */
  met: boolean | undefined;
}

export interface SuiteReport {
  date: string;
  command: string;
  machine: Machine & { kafka: string };
  scenarios: ScenarioResult[];
  targets: Target[];
}

/** Bridge ÷ peer for rate and CPU, for every row that is not the bridge's own. */
export function ratiosToPeers(rows: Row[], bridgePeer = 'bridge'): ScenarioResult['ratios'] {
  const bridge = rows.find((row) => row.peer === bridgePeer);
  const ratios: ScenarioResult['ratios'] = {};
  if (!bridge) return ratios;
  for (const row of rows) {
    if (row === bridge || row.skipped !== undefined) continue;
    ratios[row.peer] = {
      ...(bridge.rate && row.rate ? { rate: round(bridge.rate / row.rate, 2) } : {}),
      ...(bridge.cpuUs && row.cpuUs ? { cpu: round(bridge.cpuUs / row.cpuUs, 2) } : {}),
    };
  }
  return ratios;
}

export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

interface Column {
  header: string | ((scenario: ScenarioResult) => string);
  cell(row: Row, scenario: ScenarioResult): string | undefined;
}

/** `digits` decimals; with `fixed` false at most that many (the figures of `extra`). */
const number = (value: number | undefined, digits = 0, fixed = true): string | undefined =>
  value === undefined || !Number.isFinite(value)
    ? undefined
    : value.toLocaleString('en-US', {
        maximumFractionDigits: digits,
        minimumFractionDigits: fixed ? digits : 0,
      });

/** Columns in this order; a column no row of a table fills is left out of that table. */
const COLUMNS: Column[] = [
  { header: 'process under test', cell: (row) => row.peer },
  { header: 'count', cell: (row) => number(row.count) },
  { header: 'per second', cell: (row) => number(row.rate) },
  { header: 'p50 ms', cell: (row) => number(row.p50Ms, 2) },
  { header: 'p99 ms', cell: (row) => number(row.p99Ms, 2) },
  { header: 'max ms', cell: (row) => number(row.maxMs, 1) },
  { header: 'CPU µs/msg', cell: (row) => number(row.cpuUs, 1) },
  { header: 'load CPU µs/msg', cell: (row) => number(row.loadCpuUs, 1) },
  { header: 'Kafka CPU µs/msg', cell: (row) => number(row.kafkaCpuUs, 1) },
  { header: 'RSS MB', cell: (row) => number(row.rssMb) },
  {
    header: 'other',
    cell: (row) =>
      row.extra
        ? Object.entries(row.extra)
            .map(([name, value]) => `${name} ${number(value, 3, false) ?? '—'}`)
            .join(', ')
        : undefined,
  },
  {
    header: (scenario) => scenario.ratioLabel ?? 'bridge ÷ this',
    cell: (row, scenario) => {
      const ratio = scenario.ratios[row.peer];
      if (!ratio) return undefined;
      const parts = [
        ratio.rate === undefined ? undefined : `rate ${ratio.rate}×`,
        ratio.cpu === undefined ? undefined : `CPU ${ratio.cpu}×`,
      ].filter((part) => part !== undefined);
      return parts.length > 0 ? parts.join(', ') : undefined;
    },
  },
  { header: 'note', cell: (row) => row.skipped ?? row.note },
];

function table(headers: string[], rows: string[][]): string {
  const escape = (text: string): string => text.replaceAll('|', '\\|');
  return [
    `| ${headers.map(escape).join(' | ')} |`,
    `| ${headers.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
  ].join('\n');
}

export function scenarioMarkdown(scenario: ScenarioResult): string {
  const used = COLUMNS.filter((column) =>
    scenario.rows.some((row) => column.cell(row, scenario) !== undefined),
  );
  const rows = scenario.rows.map((row) => used.map((column) => column.cell(row, scenario) ?? '—'));
  return `### ${scenario.title}\n\n${scenario.parameters}\n\n${table(
    used.map((column) =>
      typeof column.header === 'string' ? column.header : column.header(scenario),
    ),
    rows,
  )}\n`;
}

export function targetsMarkdown(targets: Target[]): string {
  const verdict = (met: boolean | undefined): string =>
    met === undefined ? 'not measured' : met ? 'met' : 'NOT met';
  return `### Targets\n\n${table(
    ['target', 'measured', ''],
    targets.map((target) => [target.text, target.measured, verdict(target.met)]),
  )}\n`;
}

export function reportMarkdown(report: SuiteReport): string {
  return [...report.scenarios.map(scenarioMarkdown), targetsMarkdown(report.targets)].join('\n');
}

/** BENCHMARKS.md: the latest run, on which machine, with which command. */
export async function writeBenchmarksFiles(
  report: SuiteReport,
  markdownPath: string,
  jsonPath: string,
) {
  const { machine } = report;
  const text = `# Benchmarks: the latest run

Written by \`${report.command}\` on ${report.date.slice(0, 10)}. What the scenarios and columns
mean, and how to run them: [docs/benchmarks.md](docs/benchmarks.md). Every figure, with the ratios
to each peer, is in [BENCHMARKS.json](BENCHMARKS.json).

Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB RAM, Linux ${machine.kernel},
Node.js ${machine.node}; Kafka: ${machine.kafka}. Everything (Kafka, the process under test, the
load generators) shares these cores, so rates are those of the whole machine's work; CPU per
message is each process's own.

${reportMarkdown(report)}`;
  // formatted as `prettier --check .` wants the files of the repository
  const pretty = async (content: string, path: string): Promise<string> =>
    format(content, { ...(await resolveConfig(path)), filepath: path });
  await writeFile(markdownPath, await pretty(text, markdownPath));
  await writeFile(jsonPath, await pretty(JSON.stringify(report), jsonPath));
}

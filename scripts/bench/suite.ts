/**
 * `npm run bench` — the benchmark suite: each scenario loads the bridge, running as a process of
 * its own, from load generator processes, and its peers on the same load; prints a markdown
 * table per scenario (its parameters above it), then the targets, met or not. Kafka: as for
 * `npm run dev` (BRIDGE_KAFKA_BROKERS, a running `npm run kafka:start`, or a local Kafka started
 * and stopped here). See docs/benchmarks.md.
 *
 *   npm run bench -- [--scenario NAME]... [--procs N] [--messages N] [--idle-connections N]
 *                    [--soak] [--soak-minutes M] [--soak-rate R] [--quick] [--json FILE] [--write]
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { runBenchmark, startBenchKafka } from './bench-kafka.js';
import { describeMachine } from './os-stats.js';
import {
  scenarioMarkdown,
  targetsMarkdown,
  writeBenchmarksFiles,
  type ScenarioResult,
  type SuiteReport,
} from './report.js';
import { compression } from './scenarios/compression.js';
import type { Context, Scenario, SuiteOptions } from './scenarios/context.js';
import { downlinkQos0, downlinkQos1 } from './scenarios/downlink.js';
import { idle } from './scenarios/idle.js';
import { latency } from './scenarios/latency.js';
import { rules } from './scenarios/rules.js';
import { soak } from './scenarios/soak.js';
import { uplinkQos0, uplinkQos1 } from './scenarios/uplink.js';
import { evaluateTargets } from './targets.js';

/** In the order they run; soak only with --soak, compression only by name. */
const SCENARIOS: Scenario[] = [
  uplinkQos1,
  uplinkQos0,
  latency,
  downlinkQos0,
  downlinkQos1,
  idle,
  rules,
  soak,
  compression,
];
const NOT_BY_DEFAULT = new Set(['soak', 'compression']);

const { values: args } = parseArgs({
  options: {
    scenario: { type: 'string', multiple: true, default: [] },
    peer: { type: 'string', multiple: true, default: [] },
    procs: { type: 'string' },
    messages: { type: 'string' },
    'idle-connections': { type: 'string' },
    soak: { type: 'boolean', default: false },
    'soak-minutes': { type: 'string' },
    'soak-rate': { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    write: { type: 'boolean', default: false },
  },
});

function suiteOptions(): SuiteOptions {
  const quick = args.quick;
  const messages = Number(args.messages ?? (quick ? 40_000 : 400_000));
  return {
    procs: Number(args.procs ?? 2),
    peers: args.peer,
    messages,
    idleConnections: Number(args['idle-connections'] ?? (quick ? 3_000 : 15_000)),
    downlinkMessages: Math.round(messages / 2),
    ruleMessages: Math.round(messages / 4),
    latencySeconds: quick ? 5 : 20,
    soakMinutes: Number(args['soak-minutes'] ?? 10),
    soakRate: Number(args['soak-rate'] ?? 10_000),
    capSeconds: quick ? 30 : 60,
  };
}

function selected(): Scenario[] {
  const names = args.scenario;
  for (const name of names) {
    if (!SCENARIOS.some((scenario) => scenario.name === name)) {
      throw new Error(
        `--scenario ${name}: one of ${SCENARIOS.map((scenario) => scenario.name).join(', ')}`,
      );
    }
  }
  return SCENARIOS.filter((scenario) =>
    names.length > 0
      ? names.includes(scenario.name) || (scenario.name === 'soak' && args.soak)
      : !NOT_BY_DEFAULT.has(scenario.name) || (scenario.name === 'soak' && args.soak),
  );
}

runBenchmark(async () => {
  const scenarios = selected();
  const options = suiteOptions();
  const log = (message: string): void => {
    console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
  };
  const kafka = await startBenchKafka();
  const done = new Map<string, ScenarioResult>();
  const context: Context = { options, kafka, log, done };
  try {
    log(`options: ${JSON.stringify(options)}`);
    for (const scenario of scenarios) {
      log(`scenario ${scenario.name}`);
      const result = await scenario.run(context).catch((error: unknown): ScenarioResult => {
        log(`scenario ${scenario.name} failed: ${String(error)}`);
        return {
          name: scenario.name,
          title: scenario.name,
          parameters: '',
          rows: [{ peer: 'bridge', note: `failed: ${String(error)}` }],
          ratios: {},
        };
      });
      done.set(scenario.name, result);
      console.log(scenarioMarkdown(result));
    }
  } finally {
    await kafka.stop();
  }
  const report: SuiteReport = {
    date: new Date().toISOString(),
    command: [
      'npm run bench',
      ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : []),
    ].join(' '),
    machine: { ...describeMachine(), kafka: kafka.description },
    scenarios: [...done.values()],
    targets: evaluateTargets(done),
  };
  console.log(targetsMarkdown(report.targets));
  if (args.json) await writeFile(args.json, `${JSON.stringify(report, null, 2)}\n`);
  if (args.write) {
    await writeBenchmarksFiles(report, 'BENCHMARKS.md', 'BENCHMARKS.json');
    log('wrote BENCHMARKS.md and BENCHMARKS.json');
  }
});

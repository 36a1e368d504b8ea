/** The targets of issue 15, read from a run's results: met, not met, or not measured. */
import type { Row, ScenarioResult, Target } from './report.js';

type Results = Map<string, ScenarioResult>;

const row = (results: Results, scenario: string, peer: string): Row | undefined =>
  results.get(scenario)?.rows.find((one) => one.peer === peer && one.skipped === undefined);

const fixed = (value: number, digits = 1): string =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits });

function target(text: string, measured: (() => [string, boolean]) | undefined): Target {
  if (measured === undefined) return { text, measured: '—', met: undefined };
  const [figure, met] = measured();
  return { text, measured: figure, met };
}

export function evaluateTargets(results: Results): Target[] {
  const bridge = row(results, 'uplink-qos1', 'bridge');
  const mosquitto = row(results, 'uplink-qos1', 'mosquitto');
  const latency = row(results, 'latency', 'bridge');
  const idle = row(results, 'idle', 'bridge');
  const downlink = row(results, 'downlink-qos0', 'bridge');
  const rules = results.get('rules')?.rows.filter((one) => one.cpuUs !== undefined) ?? [];
  const fewest = rules[0];
  const most = rules.at(-1);
  const soak = row(results, 'soak', 'bridge');
  const idleKb = idle?.extra?.['KB/conn'];
  const marginalKb = idle?.extra?.['KB/conn, a fifth more'];
  const heapGrowth = soak?.extra?.['heap floor growth %'];
  const heapSlope = soak?.extra?.['heap floor MB/min'];
  const heapError = soak?.extra?.['± MB/min'];
  const hostBusy = latency?.extra?.['host CPU busy %'];
  return [
    target(
      'durable QoS 1 uplink ≥ 0.8 × Mosquitto QoS 1',
      bridge?.rate && mosquitto?.rate
        ? () => {
            const ratio = (bridge.rate ?? 0) / (mosquitto.rate ?? 1);
            return [
              `${fixed(ratio, 2)}× (${fixed(bridge.rate ?? 0, 0)} vs ${fixed(mosquitto.rate ?? 0, 0)} msg/s)`,
              ratio >= 0.8,
            ];
          }
        : undefined,
    ),
    target(
      'bridge CPU per durable message ≤ 12 µs',
      bridge?.cpuUs === undefined
        ? undefined
        : () => [`${fixed(bridge.cpuUs ?? 0)} µs`, (bridge.cpuUs ?? 0) <= 12],
    ),
    target(
      'PUBACK p99 ≤ 25 ms at half the maximum rate',
      latency?.p99Ms === undefined
        ? undefined
        : () => [
            `${fixed(latency.p99Ms ?? 0, 2)} ms at ${fixed(latency.rate ?? 0, 0)} msg/s` +
              (hostBusy === undefined ? '' : ` (host CPU ${fixed(hostBusy, 0)} % busy)`),
            (latency.p99Ms ?? 0) <= 25,
          ],
    ),
    target(
      '≤ 5 KB RSS per idle connection at 15,000 connections',
      idleKb === undefined
        ? undefined
        : () => [
            `${fixed(idleKb, 2)} KB at ${fixed(idle?.count ?? 0, 0)} connections` +
              (marginalKb === undefined
                ? ''
                : ` (${fixed(marginalKb, 2)} KB each for a fifth more)`),
            idleKb <= 5 && (idle?.count ?? 0) >= 15_000,
          ],
    ),
    target(
      '≥ 5,000 connects/s',
      idle?.rate === undefined
        ? undefined
        : () => [`${fixed(idle.rate ?? 0, 0)}/s`, (idle.rate ?? 0) >= 5_000],
    ),
    target(
      'downlink QoS 0 ≥ 50,000 msg/s',
      downlink?.rate === undefined
        ? undefined
        : () => [`${fixed(downlink.rate ?? 0, 0)} msg/s`, (downlink.rate ?? 0) >= 50_000],
    ),
    target(
      '10,000 rules: CPU per message ≤ 2 × that of 10 rules',
      fewest?.cpuUs && most?.cpuUs && rules.length > 1
        ? () => {
            const ratio = (most.cpuUs ?? 0) / (fewest.cpuUs ?? 1);
            return [
              `${fixed(ratio, 2)}× (${fixed(most.cpuUs ?? 0)} vs ${fixed(fewest.cpuUs ?? 0)} µs)`,
              ratio <= 2,
            ];
          }
        : undefined,
    ),
    target(
      'soak: no upward heap trend (heap floor: growth < 5 % or slope < 2 standard errors)',
      heapGrowth === undefined || heapSlope === undefined || heapError === undefined
        ? undefined
        : () => [
            `${fixed(heapGrowth)} % (${fixed(heapSlope, 3)} ± ${fixed(heapError, 3)} MB/min)`,
            heapGrowth < 5 || heapSlope < 2 * heapError,
          ],
    ),
  ];
}

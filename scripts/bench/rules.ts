/**
 * `npm run bench:rules` — matching throughput of the rules engine with 10, 1,000 and 10,000
 * rules, no Kafka and no sockets: Router.route() on publishes that each match one rule.
 *
 * Rules are `site<i>/{device}/#` (one per site) plus a few wildcard rules every publish also
 * passes through, so each publish yields 1 + WILDCARD_RULES records.
 *
 *   BENCH_ROUTES   routed publishes per size (default 500000)
 */
import { compileMappings } from '../../src/rules/load.js';
import type { UplinkPublish } from '../../src/rules/types.js';

const ROUTES = Number(process.env.BENCH_ROUTES ?? 500_000);
const SIZES = [10, 1_000, 10_000];
const WILDCARD_RULES = 2;

function mappings(size: number): string {
  const lines = ['uplink:'];
  for (let i = 0; i < size - WILDCARD_RULES; i++) {
    lines.push(
      `  - { name: r${i}, from: "site${i}/{device}/#", to: { topic: "t${i}", key: "{device}" } }`,
    );
  }
  lines.push('  - { name: all-alarms, from: "+/+/alarm/#", to: { topic: alarms } }');
  lines.push('  - { name: everything, from: "#", to: { topic: archive, mqttHeaders: [] } }');
  return lines.join('\n');
}

function publishes(size: number): UplinkPublish[] {
  return Array.from({ length: 1024 }, (_, i) => ({
    topic: `site${(i * 7919) % (size - WILDCARD_RULES)}/dev-${i}/telemetry/temp`,
    payload: Buffer.from('{"t":21.5}'),
    qos: 1,
    retain: false,
    clientId: `dev-${i}`,
    username: undefined,
    userProperties: [],
  }));
}

const results = [];
for (const size of SIZES) {
  const compileStarted = performance.now();
  const router = compileMappings([{ file: `bench-${size}.yaml`, text: mappings(size) }]).uplink;
  const compileMs = performance.now() - compileStarted;
  const inputs = publishes(size);
  let records = 0;
  for (let i = 0; i < 10_000; i++) router.route(inputs[i % inputs.length] as UplinkPublish); // warm-up
  const started = performance.now();
  for (let i = 0; i < ROUTES; i++) {
    const routing = router.route(inputs[i % inputs.length] as UplinkPublish);
    if (routing.kind === 'mapped') records += routing.records.length;
  }
  const seconds = (performance.now() - started) / 1000;
  if (records !== ROUTES * (1 + 1)) throw new Error(`unexpected record count ${records}`);
  results.push({
    rules: size,
    compileMs: Math.round(compileMs),
    publishesPerSecond: Math.round(ROUTES / seconds),
    microsecondsPerPublish: Number(((seconds * 1e6) / ROUTES).toFixed(2)),
  });
}
console.table(results);

import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BridgeMetrics } from '../../../src/observability/metrics.js';
import { object, list, text, at, type Json } from '../../support/parsed-documents.js';

/**
 * The monitoring files (deploy/grafana, deploy/prometheus, the `monitoring` profile of
 * docker-compose.yml) against what the bridge exposes: every metric a panel queries is one the
 * bridge registers, with labels it has; Grafana finds the dashboard and Prometheus; Prometheus
 * scrapes the bridges of the Compose file and, in the commented Kubernetes variant, the pods of
 * deploy/kubernetes.
 */

const root = new URL('../../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');

const DASHBOARD = 'deploy/grafana/mqtt-kafka-bridge.json';
const BRIDGES = ['bridge-1', 'bridge-2', 'bridge-3'];
const DATASOURCE_UID = '${DS_PROMETHEUS}';
/** Labels Prometheus adds to every series of a target. */
const TARGET_LABELS = ['instance', 'job'];
/** The only range windows a query may use: Grafana's, never a fixed one. */
const RANGES = ['$__rate_interval', '$__range'];

// ---------------------------------------------------------------------------------------------
// PromQL, as much of it as the dashboard needs: selectors, grouping clauses, range windows.

/** One `metric{label="value"}` of an expression. */
interface Selector {
  name: string;
  matchers: { label: string; operator: string; value: string }[];
  /** The function or aggregation whose parentheses enclose it (`rate`, `sum`), if any. */
  enclosing: string | undefined;
}

interface Analysis {
  selectors: Selector[];
  /** Labels of `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`, `group_left (...)`. */
  grouping: string[];
  /** What is between `[` and `]`. */
  ranges: string[];
}

const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2']);

const TOKEN =
  /\s+|"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]|\$\{?\w+\}?|[a-zA-Z_:][\w:]*|\d+(?:\.\d+)?(?:e[+-]?\d+)?|[(),]|[-+*/%^=!<>~]+/g;
const MATCHER = /^\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$/;

/** The selectors, grouping labels and ranges of a PromQL expression; throws on what it cannot read. */
function analyse(expr: string): Analysis {
  const tokens = [...expr.matchAll(TOKEN)].map((match) => match[0]);
  if (tokens.join('') !== expr) throw new Error(`cannot read PromQL: ${expr}`);
  const significant = tokens.filter((token) => token.trim() !== '');
  const analysis: Analysis = { selectors: [], grouping: [], ranges: [] };
  const stack: (string | undefined)[] = [];
  let pendingFunction: string | undefined;
  for (let index = 0; index < significant.length; index++) {
    const token = significant[index] ?? '';
    const next = significant[index + 1];
    if (GROUPING.has(token) && next === '(') {
      const end = significant.indexOf(')', index);
      analysis.grouping.push(...significant.slice(index + 2, end).filter((t) => t !== ','));
      index = end;
    } else if (token === '(') {
      stack.push(pendingFunction);
      pendingFunction = undefined;
    } else if (token === ')') {
      stack.pop();
    } else if (token.startsWith('[')) {
      analysis.ranges.push(token.slice(1, -1).trim());
    } else if (token.startsWith('{')) {
      throw new Error(`a selector without a metric name: ${expr}`);
    } else if (/^[a-zA-Z_:]/.test(token) && !KEYWORDS.has(token)) {
      if (next === '(' || AGGREGATIONS.has(token)) {
        pendingFunction = token;
        continue;
      }
      const matchers = next?.startsWith('{')
        ? next
            .slice(1, -1)
            .split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)
            .filter((part) => part.trim() !== '')
            .map((part) => {
              const match = MATCHER.exec(part);
              if (match === null) throw new Error(`cannot read matcher ${part} of ${expr}`);
              return { label: match[1] ?? '', operator: match[2] ?? '', value: match[3] ?? '' };
            })
        : [];
      if (next?.startsWith('{')) index++;
      analysis.selectors.push({ name: token, matchers, enclosing: stack.at(-1) });
    }
  }
  if (stack.length > 0) throw new Error(`unbalanced parentheses: ${expr}`);
  return analysis;
}

// ---------------------------------------------------------------------------------------------
// The bridge's registry: names, types and label names.

interface Registered {
  type: string;
  labels: string[];
}

/** The registered metric a series name belongs to: itself, or a histogram's `_bucket`/`_sum`/`_count`. */
function resolve(
  registered: Map<string, Registered>,
  series: string,
): { metric: string; part: 'bucket' | 'sum' | 'count' | undefined } | undefined {
  if (registered.has(series)) return { metric: series, part: undefined };
  const match = /^(.+)_(bucket|sum|count)$/.exec(series);
  const base = match?.[1] ?? '';
  const type = registered.get(base)?.type;
  if (match === null || (type !== 'histogram' && type !== 'summary')) return undefined;
  if (match[2] === 'bucket' && type !== 'histogram') return undefined;
  return { metric: base, part: match[2] as 'bucket' | 'sum' | 'count' };
}

// ---------------------------------------------------------------------------------------------
// The dashboard.

interface Query {
  panel: string;
  expr: string;
  legendFormat: string | undefined;
  datasource: unknown;
}

const dashboard = object(JSON.parse(read(DASHBOARD)), DASHBOARD);

/** The panels, those of collapsed rows included. */
function panelsOf(node: Json): Json[] {
  return list(node.panels ?? [], 'panels').flatMap((entry) => {
    const panel = object(entry, 'panel');
    return [panel, ...panelsOf(panel)];
  });
}
const panels = panelsOf(dashboard);
const contentPanels = panels.filter((panel) => panel.type !== 'row');

const queries: Query[] = contentPanels.flatMap((panel) =>
  list(panel.targets, `${String(panel.title)}: targets`).map((entry) => {
    const target = object(entry, 'target');
    return {
      panel: String(panel.title),
      expr: text(target.expr, `${String(panel.title)}: expr`),
      legendFormat: typeof target.legendFormat === 'string' ? target.legendFormat : undefined,
      datasource: target.datasource,
    };
  }),
);

const variables = list(at(dashboard, 'templating.list'), 'templating.list').map((entry) =>
  object(entry, 'variable'),
);
const variable = (name: string): Json => {
  const found = variables.find((entry) => entry.name === name);
  if (found === undefined) throw new Error(`no variable ${name}`);
  return found;
};

describe(DASHBOARD, () => {
  const registered = new Map<string, Registered>();

  beforeAll(async () => {
    const metrics = new BridgeMetrics();
    for (const { name, type } of await metrics.registry.getMetricsAsJSON()) {
      // prom-client keeps the label names on the metric; its types do not declare them
      const metric = metrics.registry.getSingleMetric(name) as unknown as { labelNames?: string[] };
      registered.set(name, { type: String(type), labels: [...(metric.labelNames ?? [])] });
    }
  });

  /** The labels a series of `series` may carry (its own, `le` of buckets, the target's). */
  const labelsOf = (series: string): string[] => {
    const resolved = resolve(registered, series);
    if (resolved === undefined) return [];
    return [
      ...(registered.get(resolved.metric)?.labels ?? []),
      ...(resolved.part === 'bucket' ? ['le'] : []),
      ...TARGET_LABELS,
    ];
  };

  it('is a Grafana JSON model of schemaVersion 39 or later, importable anywhere', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.uid).toBe('mqtt-kafka-bridge');
    expect(dashboard.id).toBeNull();
    // __inputs are resolved only by the import dialog, not by file provisioning: a datasource
    // variable serves both
    expect(dashboard).not.toHaveProperty('__inputs');
    expect(variable('DS_PROMETHEUS')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const instance = variable('instance');
    expect(instance).toMatchObject({ type: 'query', includeAll: true, multi: true });
    expect(instance.datasource).toEqual({ type: 'prometheus', uid: DATASOURCE_UID });
    for (const panel of contentPanels) {
      expect(panel.datasource, String(panel.title)).toEqual({
        type: 'prometheus',
        uid: DATASOURCE_UID,
      });
    }
    for (const query of queries) {
      expect(query.datasource, query.panel).toEqual({ type: 'prometheus', uid: DATASOURCE_UID });
    }
  });

  it('has the rows of the issue, panels with unique ids that do not overlap', () => {
    expect(panels.filter((panel) => panel.type === 'row').map((panel) => panel.title)).toEqual([
      'Connections',
      'Messages',
      'Kafka uplink',
      'Rules',
      'Dead letters',
      'Downlink',
      'Process',
    ]);
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Map<string, string>();
    for (const panel of panels) {
      const gridPos = object(panel.gridPos, 'gridPos');
      const size = (key: string): number => {
        const value = gridPos[key];
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
          throw new Error(`${String(panel.title)}: gridPos.${key} is not a position`);
        }
        return value;
      };
      const [x, y, w, h] = [size('x'), size('y'), size('w'), size('h')];
      expect(x + w, String(panel.title)).toBeLessThanOrEqual(24);
      for (let column = x; column < x + w; column++) {
        for (let line = y; line < y + h; line++) {
          const cell = `${column},${line}`;
          expect(cells.get(cell), `${String(panel.title)} over ${cell}`).toBeUndefined();
          cells.set(cell, String(panel.title));
        }
      }
    }
    expect(contentPanels.length).toBeGreaterThan(30);
    for (const panel of contentPanels) {
      const refIds = list(panel.targets, 'targets').map((target) => at(target, 'refId'));
      expect(new Set(refIds).size, String(panel.title)).toBe(refIds.length);
      expect(refIds.length, String(panel.title)).toBeGreaterThan(0);
    }
  });

  it('queries only metrics the bridge registers', () => {
    const unknown = queries.flatMap((query) =>
      analyse(query.expr)
        .selectors.filter((selector) => resolve(registered, selector.name) === undefined)
        .map((selector) => `${query.panel}: ${selector.name}`),
    );
    expect(unknown).toEqual([]);
    const used = new Set(
      queries.flatMap((query) =>
        analyse(query.expr).selectors.map((selector) => resolve(registered, selector.name)?.metric),
      ),
    );
    // the metrics the issue asks for
    for (const name of [
      'bridge_mqtt_connections',
      'bridge_mqtt_connections_total',
      'bridge_mqtt_limit_refusals_total',
      'bridge_mqtt_protocol_errors_total',
      'bridge_mqtt_authentication_failures_total',
      'bridge_mqtt_publishes_received_total',
      'bridge_mqtt_messages_dropped_total',
      'bridge_kafka_records_produced_total',
      'bridge_kafka_produce_seconds',
      'bridge_kafka_batch_records',
      'bridge_kafka_pending_records',
      'bridge_kafka_pending_bytes',
      'bridge_kafka_congested',
      'bridge_kafka_produce_retries_total',
      'bridge_kafka_produce_failures_total',
      'bridge_uplink_rule_records_total',
      'bridge_downlink_rule_messages_total',
      'bridge_uplink_dead_lettered_total',
      'bridge_downlink_records_invalid_total',
      'bridge_downlink_records_unmatched_total',
      'bridge_downlink_records_total',
      'bridge_downlink_messages_delivered_total',
      'bridge_downlink_messages_without_session_total',
      'bridge_downlink_unsettled_records',
      'bridge_downlink_queue_waits_total',
      'bridge_downlink_assigned_partitions',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_gc_duration_seconds',
    ]) {
      expect(used, name).toContain(name);
    }
  });

  it('uses only labels the metrics have, in matchers, grouping clauses and legends', () => {
    const wrong: string[] = [];
    for (const query of queries) {
      const { selectors, grouping } = analyse(query.expr);
      for (const selector of selectors) {
        const labels = labelsOf(selector.name);
        for (const { label } of selector.matchers) {
          if (!labels.includes(label)) wrong.push(`${query.panel}: ${selector.name}{${label}}`);
        }
        for (const label of grouping) {
          if (!labels.includes(label)) wrong.push(`${query.panel}: ${selector.name} by ${label}`);
        }
      }
      // after an aggregation only its grouping labels are left
      const left =
        grouping.length > 0 ? grouping : selectors.flatMap((selector) => labelsOf(selector.name));
      for (const match of (query.legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)) {
        const label = match[1] ?? '';
        if (!left.includes(label)) wrong.push(`${query.panel}: legend {{${label}}}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('filters every selector by $instance, rates counters over Grafana’s windows only', () => {
    const wrong: string[] = [];
    for (const query of queries) {
      const { selectors, ranges } = analyse(query.expr);
      for (const range of ranges) {
        if (!RANGES.includes(range)) wrong.push(`${query.panel}: [${range}]`);
      }
      for (const selector of selectors) {
        const where = `${query.panel}: ${selector.name}`;
        const instance = selector.matchers.find((matcher) => matcher.label === 'instance');
        if (instance?.operator !== '=~' || instance.value !== '$instance') {
          wrong.push(`${where} not filtered by instance=~"$instance"`);
        }
        const resolved = resolve(registered, selector.name);
        const type = registered.get(resolved?.metric ?? '')?.type;
        const cumulative = type === 'counter' || resolved?.part !== undefined;
        const rated = selector.enclosing === 'rate' || selector.enclosing === 'increase';
        if (cumulative && !rated) wrong.push(`${where}: a counter outside rate()/increase()`);
        if (!cumulative && rated) wrong.push(`${where}: a gauge in rate()/increase()`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('lists the bridges from a metric the bridge has', () => {
    const query = at(variable('instance'), 'query.query');
    const match = /^label_values\((\w+),\s*(\w+)\)$/.exec(text(query, 'instance query'));
    expect(match).not.toBeNull();
    expect(labelsOf(match?.[1] ?? '')).toContain(match?.[2]);
  });

  it('fails on a metric the bridge does not have (the check works)', () => {
    const { selectors } = analyse(
      'histogram_quantile(0.99, sum by (le) (rate(bridge_kafka_produce_secnds_bucket{instance=~"$instance"}[$__rate_interval])))',
    );
    expect(selectors.map((selector) => selector.name)).toEqual([
      'bridge_kafka_produce_secnds_bucket',
    ]);
    expect(resolve(registered, 'bridge_kafka_produce_secnds_bucket')).toBeUndefined();
    expect(resolve(registered, 'bridge_kafka_produce_seconds_bucket')).toEqual({
      metric: 'bridge_kafka_produce_seconds',
      part: 'bucket',
    });
    // counters are not histograms: no _bucket of them
    expect(resolve(registered, 'bridge_kafka_records_produced_total_bucket')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// Provisioning, Prometheus and Compose.

const compose = object(parse(read('docker-compose.yml'), { merge: true }), 'docker-compose.yml');
const services = object(compose.services, 'services');
const prometheus = object(parse(read('deploy/prometheus/prometheus.yml')), 'prometheus.yml');
const datasources = object(
  parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')),
  'datasources',
);
const providers = object(
  parse(read('deploy/grafana/provisioning/dashboards/mqtt-kafka-bridge.yml')),
  'providers',
);

/** A service's volumes as `source → target`. */
function mounts(service: string): Map<string, string> {
  return new Map(
    list(at(services, `${service}.volumes`), `${service}.volumes`).map((entry) => {
      const [source = '', target = ''] = text(entry, 'volume').split(':');
      return [source, target];
    }),
  );
}

/** The scrape job of the bridges, for Compose. */
const job = object(
  list(prometheus.scrape_configs, 'scrape_configs')
    .map((entry) => object(entry, 'scrape_config'))
    .find((entry) => entry.job_name === 'mqtt-kafka-bridge'),
  'job mqtt-kafka-bridge',
);

/** The commented Kubernetes job of prometheus.yml, uncommented. */
function kubernetesJob(): Json {
  const lines = read('deploy/prometheus/prometheus.yml').split('\n');
  const start = lines.findIndex((line) => /^\s*#\s*- job_name:/.test(line));
  expect(start).toBeGreaterThan(0);
  const block: string[] = [];
  for (const line of lines.slice(start)) {
    if (!/^\s*#/.test(line)) break;
    block.push(line.replace(/^(\s*)# ?/, '$1'));
  }
  const jobs = list(parse(block.join('\n')), 'kubernetes job');
  expect(jobs).toHaveLength(1);
  return object(jobs[0], 'kubernetes job');
}

describe('monitoring provisioning', () => {
  it('runs Prometheus and Grafana under the Compose profile monitoring only', () => {
    for (const [service, image, port] of [
      ['prometheus', 'prom/prometheus:', '9090:9090'],
      ['grafana', 'grafana/grafana:', '3000:3000'],
    ] as const) {
      expect(at(services, `${service}.profiles`), service).toEqual(['monitoring']);
      expect(text(at(services, `${service}.image`), service).startsWith(image)).toBe(true);
      expect(at(services, `${service}.ports`), service).toEqual([port]);
    }
    for (const service of ['kafka', 'haproxy', ...BRIDGES]) {
      expect(object(services[service], service), service).not.toHaveProperty('profiles');
    }
    const environment = object(at(services, 'grafana.environment'), 'grafana.environment');
    expect(environment.GF_AUTH_ANONYMOUS_ENABLED).toBe('true');
    expect(environment.GF_AUTH_ANONYMOUS_ORG_ROLE).toBe('Viewer');
  });

  it('gives Prometheus deploy/prometheus/prometheus.yml', () => {
    expect(mounts('prometheus').get('./deploy/prometheus/prometheus.yml')).toBe(
      '/etc/prometheus/prometheus.yml',
    );
  });

  it('provisions the dashboard file into the folder Grafana’s provider reads', () => {
    const grafanaMounts = mounts('grafana');
    expect(grafanaMounts.get('./deploy/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    const target = grafanaMounts.get(`./${DASHBOARD}`);
    const provider = object(list(providers.providers, 'providers')[0], 'provider');
    expect(provider.type).toBe('file');
    expect(posix.dirname(target ?? '')).toBe(at(provider, 'options.path'));
    expect(at(services, 'grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH')).toBe(
      target,
    );
  });

  it('provisions the Compose Prometheus as the default data source, at its scrape interval', () => {
    const datasource = object(list(datasources.datasources, 'datasources')[0], 'datasource');
    expect(datasource.type).toBe('prometheus');
    // the dashboard's DS_PROMETHEUS variable starts on the default data source
    expect(datasource.isDefault).toBe(true);
    const url = new URL(text(datasource.url, 'url'));
    expect(Object.keys(services)).toContain(url.hostname);
    expect(at(services, `${url.hostname}.ports`)).toEqual([`${url.port}:${url.port}`]);
    expect(at(datasource, 'jsonData.timeInterval')).toBe(at(prometheus, 'global.scrape_interval'));
  });

  it('scrapes /metrics of the three bridges of docker-compose.yml on their HTTP port', () => {
    expect(job.metrics_path ?? '/metrics').toBe('/metrics');
    const targets = list(job.static_configs, 'static_configs').flatMap((entry) =>
      list(at(entry, 'targets'), 'targets'),
    );
    expect(targets).toEqual(BRIDGES.map((bridge) => `${bridge}:9080`));
    for (const bridge of BRIDGES) {
      expect(Object.keys(services)).toContain(bridge);
      // the container side of the bridge's published port
      expect(list(at(services, `${bridge}.ports`), bridge)).toEqual([
        expect.stringMatching(/:9080$/),
      ]);
    }
  });

  it('has a commented Kubernetes variant finding the pods of deploy/kubernetes', () => {
    const kubernetes = kubernetesJob();
    expect(kubernetes.job_name).toBe(job.job_name);
    expect(list(kubernetes.kubernetes_sd_configs, 'kubernetes_sd_configs')).toContainEqual(
      expect.objectContaining({ role: 'pod' }),
    );
    const relabels = list(kubernetes.relabel_configs, 'relabel_configs').map((entry) =>
      object(entry, 'relabel_config'),
    );
    const kept = new Map(
      relabels
        .filter((entry) => entry.action === 'keep')
        .map((entry) => [list(entry.source_labels, 'source_labels').join(';'), entry.regex]),
    );

    const statefulSet = object(parse(read('deploy/kubernetes/statefulset.yaml')), 'StatefulSet');
    const labels = object(at(statefulSet, 'spec.template.metadata.labels'), 'labels');
    for (const [label, value] of Object.entries(labels)) {
      const meta = `__meta_kubernetes_pod_label_${label.replace(/[^a-zA-Z0-9_]/g, '_')}`;
      expect(kept.get(meta), meta).toBe(value);
    }
    const container = object(list(at(statefulSet, 'spec.template.spec.containers'), 'c')[0], 'c');
    const port = list(container.ports, 'ports')
      .map((entry) => object(entry, 'port'))
      .find((entry) => entry.containerPort === 9080);
    expect(port?.name).toBe('http');
    expect(kept.get('__meta_kubernetes_pod_container_port_name')).toBe(port?.name);
    expect(at(statefulSet, 'spec.template.metadata.annotations')).toMatchObject({
      'prometheus.io/port': '9080',
      'prometheus.io/path': '/metrics',
    });
    // instance: the pod name, which is the bridge's BRIDGE_INSTANCE_ID
    expect(relabels).toContainEqual({
      source_labels: ['__meta_kubernetes_pod_name'],
      target_label: 'instance',
    });
  });
});

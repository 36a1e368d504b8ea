import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { configSchema } from '../../../src/config/schema.js';
import { compileMappings } from '../../../src/rules/load.js';
import { object, list, at, type Json } from '../../support/parsed-documents.js';

/**
 * The deployment files (docker-compose.yml, deploy/haproxy, deploy/kubernetes) against the
 * configuration they feed: variable names the bridge knows, a fleet whose bridges differ in
 * instance id and share their topics, a load balancer that knows every bridge.
 */

const root = new URL('../../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');

const BRIDGES = ['bridge-1', 'bridge-2', 'bridge-3'];

/** Every environment variable the configuration schema declares. */
function declaredVariables(node: object): string[] {
  return Object.values(node).flatMap((value: object) =>
    'env' in value && typeof value.env === 'string' ? [value.env] : declaredVariables(value),
  );
}

/** Every BRIDGE_* name in a parsed file: mapping keys (Compose) and `name:` values (Kubernetes). */
function namedVariables(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(namedVariables);
  if (typeof node === 'string') return /^BRIDGE_[A-Z0-9_]+$/.test(node) ? [node] : [];
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([key, value]) => [
    ...namedVariables(key),
    ...namedVariables(value),
  ]);
}

// Compose: the shared settings of the bridges come from anchors and merge keys (<<).
const compose = object(parse(read('docker-compose.yml'), { merge: true }), 'docker-compose.yml');
const services = object(compose.services, 'services');
const environmentOf = (service: string): Json =>
  object(at(services, `${service}.environment`), `${service}.environment`);

const kubernetesFiles = readdirSync(new URL('deploy/kubernetes/', root)).filter((name) =>
  name.endsWith('.yaml'),
);
const manifests = kubernetesFiles.flatMap((name) =>
  parseAllDocuments(read(`deploy/kubernetes/${name}`)).map((document) => {
    if (document.errors.length > 0) throw new Error(`${name}: ${document.errors[0]?.message}`);
    return object(document.toJS(), name);
  }),
);
function manifest(kind: string, predicate: (resource: Json) => boolean = () => true): Json {
  const found = manifests.filter((resource) => resource.kind === kind && predicate(resource));
  expect(found, kind).toHaveLength(1);
  return found[0] as Json;
}

/** haproxy.cfg as sections (`backend bridges-mqtt` → its lines), comments left out. */
function haproxySections(text: string): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trimEnd();
    if (line.trim() === '') continue;
    if (/^\S/.test(line)) {
      current = [];
      sections.set(line.trim().replace(/\s+/g, ' '), current);
    } else {
      current.push(line.trim().replace(/\s+/g, ' '));
    }
  }
  return sections;
}

describe('deployment files', () => {
  const declared = new Set(declaredVariables(configSchema));

  it('name only environment variables the configuration declares', () => {
    // the Dockerfile's ENV lines, as `NAME=value` words
    const dockerfileEnv = read('Dockerfile')
      .split('\n')
      .filter((line) => line.startsWith('ENV '))
      .flatMap((line) =>
        line
          .slice(4)
          .split(/\s+/)
          .map((word) => word.split('=')[0]),
      );
    const files: [string, unknown][] = [
      ['docker-compose.yml', compose],
      ['Dockerfile', dockerfileEnv],
      ...manifests.map((resource): [string, unknown] => [String(resource.kind), resource]),
    ];
    const named = [
      ...new Set(
        files.flatMap(([file, parsed]) =>
          namedVariables(parsed).map((variable) => `${file}: ${variable}`),
        ),
      ),
    ];
    expect(named.length).toBeGreaterThan(20);
    expect(named.filter((entry) => !declared.has(entry.split(': ')[1] ?? ''))).toEqual([]);
  });

  describe('docker-compose.yml', () => {
    it('runs three bridges with their own instance ids, sharing the sessions and retained topics', () => {
      const environments = BRIDGES.map(environmentOf);
      expect(environments.map((environment) => environment.BRIDGE_INSTANCE_ID)).toEqual(BRIDGES);
      for (const environment of environments) {
        expect(environment.BRIDGE_SESSIONS_STORE).toBe('kafka');
        expect(environment.BRIDGE_KAFKA_BROKERS).toBe('kafka:9092');
        // one group for the downlink: a fleet sharing its sessions needs no group per bridge
        expect(environment).not.toHaveProperty('BRIDGE_DOWNLINK_INSTANCE_ID');
        // development settings of the Compose file
        expect(environment.BRIDGE_AUTH_ALLOW_ANONYMOUS).toBe('true');
        expect(environment.BRIDGE_KAFKA_CREATE_TOPICS).toBe('true');
      }
      for (const variable of [
        'BRIDGE_SESSIONS_TOPIC',
        'BRIDGE_SESSIONS_MESSAGES_TOPIC',
        'BRIDGE_RETAINED_TOPIC',
      ]) {
        const values = new Set(environments.map((environment) => environment[variable]));
        expect([...values], variable).toHaveLength(1);
        expect([...values][0], variable).toMatch(/^\S+$/);
      }
    });

    it('builds the bridges from the Dockerfile, mounts the rules, lets them stop gracefully', () => {
      for (const bridge of BRIDGES) {
        expect(at(services, `${bridge}.build`)).toBe('.');
        expect(at(services, `${bridge}.volumes`)).toContain('./mappings:/app/mappings:ro');
        expect(at(services, `${bridge}.depends_on.kafka.condition`)).toBe('service_healthy');
        const grace = /^(\d+)s$/.exec(String(at(services, `${bridge}.stop_grace_period`)));
        expect(Number(grace?.[1]) * 1000).toBeGreaterThan(
          Number(environmentOf(bridge).BRIDGE_SHUTDOWN_GRACE_MS ?? 10_000),
        );
      }
    });

    it('publishes MQTT through HAProxy only, and each bridge’s health port on its own', () => {
      const haproxy = object(services.haproxy, 'haproxy');
      expect(haproxy.ports).toEqual(expect.arrayContaining(['1883:1883', '8083:8083']));
      expect(haproxy.volumes).toContain(
        './deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro',
      );
      const ports = BRIDGES.map((bridge) => list(at(services, `${bridge}.ports`), bridge));
      expect(ports).toEqual([['9081:9080'], ['9082:9080'], ['9083:9080']]);
      expect(at(services, 'kafka.ports')).toEqual(['29092:29092']);
    });
  });

  describe('deploy/haproxy/haproxy.cfg', () => {
    const sections = haproxySections(read('deploy/haproxy/haproxy.cfg'));
    const section = (name: string): string[] => {
      const lines = sections.get(name);
      if (lines === undefined) throw new Error(`no section ${name}`);
      return lines;
    };

    it('balances MQTT and WebSocket over the three bridges, TCP, least connections', () => {
      expect(section('defaults')).toContain('mode tcp');
      for (const [frontend, backend, port] of [
        ['mqtt', 'bridges-mqtt', 1883],
        ['mqtt-websocket', 'bridges-websocket', 8083],
      ] as const) {
        expect(section(`frontend ${frontend}`)).toEqual(
          expect.arrayContaining([`bind :${port}`, `default_backend ${backend}`]),
        );
        const lines = section(`backend ${backend}`);
        expect(lines).toContain('balance leastconn');
        expect(lines.filter((line) => line.startsWith('server '))).toEqual(
          BRIDGES.map((bridge) => `server ${bridge} ${bridge}:${port}`),
        );
      }
    });

    it('checks the bridges’ readiness on their HTTP port, keeps quiet connections open', () => {
      for (const backend of ['bridges-mqtt', 'bridges-websocket']) {
        const lines = section(`backend ${backend}`);
        expect(lines).toContain('option httpchk');
        expect(
          lines.some((line) => /^http-check send meth GET uri \/health\/ready /.test(line)),
        ).toBe(true);
        expect(lines).toContain('http-check expect status 200');
      }
      const defaults = section('defaults');
      const serverDefaults = defaults.find((line) => line.startsWith('default-server '));
      expect(serverDefaults).toMatch(/ check port 9080 /);
      // names that do not resolve (yet) do not stop HAProxy
      expect(serverDefaults).toMatch(/ init-addr last,libc,none$/);
      expect(defaults).toEqual(
        expect.arrayContaining(['timeout client 1h', 'timeout server 1h', 'option redispatch']),
      );
    });
  });

  describe('deploy/kubernetes', () => {
    const statefulSet = manifest('StatefulSet');
    const pod = object(at(statefulSet, 'spec.template.spec'), 'pod');
    const container = object(list(pod.containers, 'containers')[0], 'container');
    const env = list(container.env, 'env').map((entry) => object(entry, 'env'));
    const value = (name: string): unknown => env.find((entry) => entry.name === name)?.value;

    it('takes each bridge’s instance id from its stable pod name', () => {
      expect(env.find((entry) => entry.name === 'BRIDGE_INSTANCE_ID')).toEqual({
        name: 'BRIDGE_INSTANCE_ID',
        valueFrom: { fieldRef: { fieldPath: 'metadata.name' } },
      });
      expect(at(statefulSet, 'spec.podManagementPolicy')).toBe('Parallel');
      const headless = manifest('Service', (service) => at(service, 'spec.clusterIP') === 'None');
      expect(at(statefulSet, 'spec.serviceName')).toBe(at(headless, 'metadata.name'));
    });

    it('shares the sessions in Kafka and one downlink group, with string values', () => {
      expect(value('BRIDGE_SESSIONS_STORE')).toBe('kafka');
      expect(value('BRIDGE_SESSIONS_TOPIC')).toBe(environmentOf('bridge-1').BRIDGE_SESSIONS_TOPIC);
      expect(value('BRIDGE_RETAINED_TOPIC')).toMatch(/^\S+$/);
      expect(value('BRIDGE_HTTP_HOST')).toBe('0.0.0.0');
      expect(env.map((entry) => entry.name)).not.toContain('BRIDGE_DOWNLINK_INSTANCE_ID');
      for (const entry of env) {
        if ('value' in entry) expect(typeof entry.value, String(entry.name)).toBe('string');
      }
    });

    it('probes readiness and liveness on port 9080 and lets the bridge stop gracefully', () => {
      const ports = list(container.ports, 'ports').map((port) => object(port, 'port'));
      expect(ports).toContainEqual({ name: 'http', containerPort: 9080 });
      expect(at(container, 'readinessProbe.httpGet')).toEqual({
        path: '/health/ready',
        port: 'http',
      });
      expect(at(container, 'livenessProbe.httpGet')).toEqual({
        path: '/health/live',
        port: 'http',
      });
      const preStop = list(at(container, 'lifecycle.preStop.exec.command'), 'preStop');
      expect(Number(pod.terminationGracePeriodSeconds) * 1000).toBeGreaterThan(
        Number(value('BRIDGE_SHUTDOWN_GRACE_MS')) + Number(preStop[1]) * 1000,
      );
      expect(at(container, 'resources.requests')).toHaveProperty('memory');
    });

    it('exposes MQTT and WebSocket without session affinity; one pod down at a time', () => {
      const service = manifest(
        'Service',
        (resource) => at(resource, 'spec.type') === 'LoadBalancer',
      );
      expect(at(service, 'spec.sessionAffinity') ?? 'None').toBe('None');
      const ports = list(at(service, 'spec.ports'), 'ports').map((port) => at(port, 'port'));
      expect(ports).toEqual([1883, 8083]);
      const labels = at(statefulSet, 'spec.template.metadata.labels');
      expect(at(service, 'spec.selector')).toEqual(labels);
      const budget = manifest('PodDisruptionBudget');
      expect(at(budget, 'spec.maxUnavailable')).toBe(1);
      expect(at(budget, 'spec.selector.matchLabels')).toEqual(labels);
    });

    it('mounts valid mapping rules from the ConfigMap where BRIDGE_MAPPINGS points', () => {
      const configMap = manifest('ConfigMap');
      const volume = list(pod.volumes, 'volumes')
        .map((entry) => object(entry, 'volume'))
        .find((entry) => at(entry, 'configMap.name') === at(configMap, 'metadata.name'));
      const mount = list(container.volumeMounts, 'volumeMounts')
        .map((entry) => object(entry, 'volumeMount'))
        .find((entry) => entry.name === volume?.name);
      expect(mount?.mountPath).toBe(value('BRIDGE_MAPPINGS'));
      const sources = Object.entries(object(configMap.data, 'data')).map(([file, text]) => ({
        file,
        text: String(text),
      }));
      const mappings = compileMappings(sources);
      expect(mappings.uplink.ruleCount).toBeGreaterThan(0);
      expect(mappings.downlink.ruleCount).toBeGreaterThan(0);
    });
  });
});

import type { Template, TemplateScope } from './templates.js';
import type { HeaderValue, UplinkPublish } from './types.js';

/** What `mqttHeaders` can copy from a publish into Kafka headers. */
export type MqttHeaderSource =
  | 'topic'
  | 'clientId'
  | 'username'
  | 'qos'
  | 'retain'
  | 'contentType'
  | 'responseTopic'
  | 'correlationData'
  | 'userProperties';

/** The header each fixed source is written to, and how; absent value → header not set. */
const FIXED_HEADERS: ReadonlyMap<
  MqttHeaderSource,
  [string, (p: UplinkPublish) => string | Buffer | undefined]
> = new Map([
  ['topic', ['mqtt-topic', (p: UplinkPublish) => p.topic]],
  ['clientId', ['mqtt-client-id', (p: UplinkPublish) => p.clientId]],
  ['username', ['mqtt-username', (p: UplinkPublish) => p.username]],
  ['qos', ['mqtt-qos', (p: UplinkPublish) => String(p.qos)]],
  ['retain', ['mqtt-retain', (p: UplinkPublish) => String(p.retain)]],
  ['contentType', ['mqtt-content-type', (p: UplinkPublish) => p.contentType]],
  ['responseTopic', ['mqtt-response-topic', (p: UplinkPublish) => p.responseTopic]],
  ['correlationData', ['mqtt-correlation-data', (p: UplinkPublish) => p.correlationData]],
]);

export const MQTT_HEADER_SOURCES: readonly MqttHeaderSource[] = [
  ...FIXED_HEADERS.keys(),
  'userProperties',
];

export const DEFAULT_MQTT_HEADERS: readonly MqttHeaderSource[] = [
  'topic',
  'clientId',
  'userProperties',
];

/**
 * Header names the bridge writes itself. A user property with one of these names is dropped,
 * whatever `mqttHeaders` says, so a consumer can trust e.g. `mqtt-client-id`.
 */
/** Headers of a dead-letter record: the rules that failed and why, in the same order. */
export const DEAD_LETTER_HEADERS = { rule: 'dead-letter-rule', error: 'dead-letter-error' };

const RESERVED_HEADER_NAMES: ReadonlySet<string> = new Set([
  ...[...FIXED_HEADERS.values()].map(([name]) => name),
  ...Object.values(DEAD_LETTER_HEADERS),
]);

export interface HeaderSpec {
  mqttHeaders: readonly MqttHeaderSource[];
  /** Templated headers, applied last: they override same-named headers from `mqttHeaders`. */
  headers: ReadonlyArray<readonly [name: string, value: Template]>;
}

/**
 * A record's headers: no prototype chain to reach (a user property named `__proto__` or
 * `toString` is a header like any other), yet fast properties, unlike Object.create(null)'s
 * dictionary (a fifth of the bytes a publish allocates).
 */
const RecordHeaders = function (this: Record<string, HeaderValue>) {
  // properties are added by buildHeaders
} as unknown as new () => Record<string, HeaderValue>;
RecordHeaders.prototype = Object.freeze(Object.create(null) as object);

export function buildHeaders(spec: HeaderSpec, scope: TemplateScope): Record<string, HeaderValue> {
  const headers = new RecordHeaders();
  for (const source of spec.mqttHeaders) {
    const fixed = FIXED_HEADERS.get(source);
    if (fixed === undefined) {
      addUserProperties(headers, scope.publish.userProperties);
    } else {
      const [name, read] = fixed;
      const value = read(scope.publish);
      if (value !== undefined) headers[name] = value;
    }
  }
  for (const [name, template] of spec.headers) headers[name] = template.render(scope);
  return headers;
}

/** MQTT 5 user properties keep their names; a repeated name becomes a list, in order. */
function addUserProperties(
  headers: Record<string, HeaderValue>,
  properties: UplinkPublish['userProperties'],
): void {
  for (const [name, value] of properties) {
    if (RESERVED_HEADER_NAMES.has(name)) continue;
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
}

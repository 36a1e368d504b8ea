import { isScalar, isSeq } from 'yaml';
import { AvroSchemas } from './codecs/avro.js';
import type { MappingIssue } from './errors.js';
import { parseFilter } from './filter.js';
import { readDownlinkRule } from './read-downlink.js';
import type { TopicFilter } from './filter.js';
import { DEFAULT_MQTT_HEADERS, MQTT_HEADER_SOURCES } from './headers.js';
import type { MqttHeaderSource } from './headers.js';
import { MAX_PARTITION, type PartitionSpec } from './partition.js';
import { FIELD_PATH_RULE, parseFieldPath } from './payload-json.js';
import { readFixedKafkaTopic, readKafkaTopic, readTemplate } from './read-template.js';
import { RAW_VALUE, readValue } from './read-value.js';
import { readWhere } from './read-where.js';
import type { MappingFile, UnmatchedPolicy, UplinkRule } from './rule.js';
import { didYouMean } from './suggest.js';
import { RESERVED_CAPTURE_NAMES } from './templates.js';
import type { CaptureScope, Template } from './templates.js';
import type { TimestampSpec } from './timestamp.js';
import { isOneOf, readTopLevelMap } from './yaml-nodes.js';
import type { Field, NodeReader, Value } from './yaml-nodes.js';

/*
 * The mapping file language, checked on the YAML nodes so that every problem has a position.
 * Each reader returns undefined when its part is unusable, having reported why.
 */

const FILE_FIELDS = ['uplink', 'downlink', 'unmatched', 'deadLetter'] as const;
const RULE_FIELDS = ['name', 'from', 'where', 'final', 'to', 'value'] as const;
const TO_FIELDS = ['topic', 'key', 'partition', 'timestamp', 'headers', 'mqttHeaders'] as const;
const UNMATCHED_FIELDS = ['action', 'topic'] as const;
const UNMATCHED_ACTIONS = ['drop', 'reject', 'forward'] as const;
const PARTITIONERS = ['hash', 'round-robin'];
const PAYLOAD_PREFIX = 'payload.';

/**
 * One mapping file: its `uplink` and `downlink` rules in order and its settings; problems are appended to
 * `issues`. `.avsc` files named by rules are read through `schemas`, relative to `file`.
 */
export function readMappingFile(
  file: string,
  text: string,
  issues: MappingIssue[],
  schemas: AvroSchemas = new AvroSchemas(),
): MappingFile {
  const top = readTopLevelMap(file, text, issues);
  if (top === undefined) return { rules: [], downlink: [] };
  const { reader, root } = top;
  const fields = reader.fields(root, FILE_FIELDS);
  const read: MappingFile = { rules: [], downlink: [] };
  const unmatched = fields.unmatched && readUnmatched(reader, fields.unmatched);
  if (fields.unmatched && unmatched) {
    read.unmatched = { policy: unmatched, position: reader.position(fields.unmatched.key) };
  }
  const deadLetter = fields.deadLetter && readDeadLetter(reader, fields.deadLetter);
  if (fields.deadLetter && deadLetter) {
    read.deadLetter = { topic: deadLetter, position: reader.position(fields.deadLetter.key) };
  }
  // `uplink:` with nothing under it (every rule commented out) is an empty list.
  if (fields.uplink !== undefined && !reader.isEmpty(fields.uplink)) {
    const items = reader.list(fields.uplink) ?? [];
    read.rules = items.flatMap((item) => readRule(reader, item, file, schemas) ?? []);
  }
  if (fields.downlink !== undefined && !reader.isEmpty(fields.downlink)) {
    const items = reader.list(fields.downlink) ?? [];
    read.downlink = items.flatMap((item) => readDownlinkRule(reader, item, file, schemas) ?? []);
  }
  return read;
}

/** `unmatched: { action: drop | reject | forward, topic }`. */
function readUnmatched(reader: NodeReader, field: Field): UnmatchedPolicy | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const fields = reader.fields(map, UNMATCHED_FIELDS, ['action']);
  const action = fields.action && reader.string(fields.action);
  if (action === undefined) return undefined;
  if (!isOneOf(action.text, UNMATCHED_ACTIONS)) {
    const hint =
      didYouMean(action.text, UNMATCHED_ACTIONS) || ` (one of: ${UNMATCHED_ACTIONS.join(', ')})`;
    reader.report(action.node, `unknown action "${action.text}"${hint}`);
    return undefined;
  }
  if (action.text !== 'forward') {
    if (fields.topic) reader.report(fields.topic.key, '"topic" is only for action forward');
    return fields.topic ? undefined : { action: action.text };
  }
  if (!fields.topic) {
    reader.report(map, 'missing required field "topic" (where action forward sends publishes)');
    return undefined;
  }
  const topic = readFixedKafkaTopic(reader, fields.topic);
  return topic === undefined ? undefined : { action: 'forward', topic };
}

/** `deadLetter: { topic }`. */
function readDeadLetter(reader: NodeReader, field: Field): string | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const fields = reader.fields(map, ['topic'] as const, ['topic']);
  return fields.topic && readFixedKafkaTopic(reader, fields.topic);
}

function readRule(
  reader: NodeReader,
  item: Value,
  file: string,
  schemas: AvroSchemas,
): UplinkRule | undefined {
  const map = reader.map(item);
  if (map === undefined) return undefined;
  const before = reader.issueCount;
  const fields = reader.fields(map, RULE_FIELDS, ['name', 'from', 'to']);

  const name = fields.name && reader.string(fields.name);
  if (name?.text === '') reader.report(name.node, 'a rule name must not be empty');
  const filters = fields.from && readFilters(reader, fields.from);
  const scope = filters && captureScope(filters);
  const conditions = fields.where ? readWhere(reader, fields.where) : [];
  const final = fields.final ? readBoolean(reader, fields.final) : false;
  const to = fields.to && readTo(reader, fields.to, scope);
  const value = fields.value ? readValue(reader, fields.value, file, schemas) : RAW_VALUE;

  if (reader.issueCount > before || !name || !filters || !conditions || final === undefined) {
    return undefined;
  }
  if (!to || !value) return undefined;
  const position = reader.position(name.node);
  return { name: name.text, position, filters, conditions, final, to, value };
}

function readBoolean(reader: NodeReader, field: Field): boolean | undefined {
  if (isScalar(field.node) && typeof field.node.value === 'boolean') return field.node.value;
  reader.report(reader.at(field), 'expected true or false');
  return undefined;
}

/** `from`: one topic filter or a non-empty list of them. */
function readFilters(reader: NodeReader, field: Field): TopicFilter[] | undefined {
  const before = reader.issueCount;
  const list = isSeq(field.node);
  const items = list ? (reader.list(field) ?? []) : [field];
  if (items.length === 0) reader.report(reader.at(field), 'expected at least one topic filter');

  const filters: TopicFilter[] = [];
  for (const item of items) {
    const text = reader.string(item, list ? 'a string' : 'a string or a list of strings');
    if (text === undefined) continue;
    const parsed = parseFilter(text.text);
    if (!parsed.ok) {
      reader.reportIn(text, parsed.issues);
      continue;
    }
    const reserved = parsed.value.captures.filter((c) => RESERVED_CAPTURE_NAMES.includes(c.name));
    reader.reportIn(
      text,
      reserved.map((c) => ({
        offset: c.offset,
        message: `capture name "${c.name}" is taken by a built-in variable`,
      })),
    );
    filters.push(parsed.value);
  }
  return reader.issueCount > before ? undefined : filters;
}

/** Templates may use the captures present in every filter of the rule. */
function captureScope(filters: readonly TopicFilter[]): CaptureScope {
  const names = filters.map((filter) => filter.captures.map((capture) => capture.name));
  const all = new Set(names.flat());
  const everywhere = [...all].filter((name) => names.every((list) => list.includes(name)));
  const somewhere = new Set([...all].filter((name) => !everywhere.includes(name)));
  return { everywhere, somewhere };
}

function readTo(
  reader: NodeReader,
  field: Field,
  scope: CaptureScope | undefined,
): UplinkRule['to'] | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const before = reader.issueCount;
  const fields = reader.fields(map, TO_FIELDS, ['topic']);

  const topic = fields.topic && readKafkaTopic(reader, fields.topic, scope);
  const key = fields.key && readTemplate(reader, fields.key, scope);
  const partition: PartitionSpec | undefined = fields.partition
    ? readPartition(reader, fields.partition, scope)
    : { kind: 'hash' };
  const timestamp: TimestampSpec | undefined = fields.timestamp
    ? readTimestamp(reader, fields.timestamp)
    : { kind: 'publish' };
  const headers = fields.headers ? readHeaders(reader, fields.headers, scope) : [];
  const mqttHeaders = fields.mqttHeaders
    ? readMqttHeaders(reader, fields.mqttHeaders)
    : DEFAULT_MQTT_HEADERS;

  if (reader.issueCount > before || !topic || !partition || !timestamp) return undefined;
  if (!headers || !mqttHeaders) return undefined;
  return { topic, key, partition, timestamp, headers, mqttHeaders };
}

/** `hash`, `round-robin`, a partition number, or a template that renders one. */
function readPartition(
  reader: NodeReader,
  field: Field,
  scope: CaptureScope | undefined,
): PartitionSpec | undefined {
  const node = field.node;
  if (isScalar(node)) {
    const { value } = node;
    if (value === 'hash') return { kind: 'hash' };
    if (value === 'round-robin') return { kind: 'round-robin' };
    if (
      typeof value === 'number' &&
      Number.isInteger(value) &&
      value >= 0 &&
      value <= MAX_PARTITION
    ) {
      return { kind: 'fixed', partition: value, position: reader.position(node) };
    }
    if (typeof value === 'string' && value.includes('{')) {
      const template = readTemplate(reader, field, scope);
      return template && { kind: 'template', template };
    }
  }
  const text = isScalar(node) && typeof node.value === 'string' ? node.value : '';
  reader.report(
    reader.at(field),
    `expected "hash", "round-robin", a partition number or a template${didYouMean(text, PARTITIONERS)}`,
  );
  return undefined;
}

/** `publish` (when the bridge received it) or `payload.<field>` (epoch ms or ISO 8601). */
function readTimestamp(reader: NodeReader, field: Field): TimestampSpec | undefined {
  const text = reader.string(field);
  if (text === undefined) return undefined;
  if (text.text === 'publish') return { kind: 'publish' };
  if (text.text.startsWith(PAYLOAD_PREFIX)) {
    const path = parseFieldPath(text.text.slice(PAYLOAD_PREFIX.length));
    if (path !== undefined) return { kind: 'field', path };
    reader.report(text.node, `invalid payload field "${text.text}" (${FIELD_PATH_RULE})`);
    return undefined;
  }
  const hint = didYouMean(text.text, ['publish']);
  reader.report(text.node, `expected "publish" or "payload.<field>"${hint}`);
  return undefined;
}

function readHeaders(
  reader: NodeReader,
  field: Field,
  scope: CaptureScope | undefined,
): Array<[string, Template]> | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const headers: Array<[string, Template]> = [];
  for (const entry of reader.entries(map)) {
    if (entry.name === '') reader.report(entry.key, 'a header name must not be empty');
    const template = readTemplate(reader, entry, scope);
    if (template !== undefined) headers.push([entry.name, template]);
  }
  return headers;
}

function readMqttHeaders(reader: NodeReader, field: Field): MqttHeaderSource[] | undefined {
  const items = reader.list(field);
  if (items === undefined) return undefined;
  const sources: MqttHeaderSource[] = [];
  for (const item of items) {
    const entry = reader.string(item);
    if (entry === undefined) continue;
    const { text } = entry;
    if (!isOneOf(text, MQTT_HEADER_SOURCES)) {
      const hint =
        didYouMean(text, MQTT_HEADER_SOURCES) || ` (one of: ${MQTT_HEADER_SOURCES.join(', ')})`;
      reader.report(entry.node, `unknown mqttHeaders entry "${text}"${hint}`);
    } else if (sources.includes(text)) {
      reader.report(entry.node, `"${text}" is listed twice`);
    } else {
      sources.push(text);
    }
  }
  return sources;
}

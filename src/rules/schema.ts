import { LineCounter, isScalar, isSeq, parseDocument } from 'yaml';
import type { MappingIssue } from './errors.js';
import { parseFilter } from './filter.js';
import type { TopicFilter } from './filter.js';
import { DEFAULT_MQTT_HEADERS, MQTT_HEADER_SOURCES } from './headers.js';
import type { MqttHeaderSource } from './headers.js';
import type { UplinkRule } from './rule.js';
import { didYouMean } from './suggest.js';
import { BUILTIN_VARIABLES, compileTemplate } from './templates.js';
import type { CaptureScope, Template } from './templates.js';
import { NodeReader, isOneOf } from './yaml-nodes.js';
import type { Field, Value } from './yaml-nodes.js';

/*
 * The mapping file language, checked on the YAML nodes so that every problem has a position.
 * Each reader returns undefined when its part is unusable, having reported why.
 */

const FILE_FIELDS = ['uplink', 'downlink'] as const;
const RULE_FIELDS = ['name', 'from', 'to', 'value'] as const;
const TO_FIELDS = ['topic', 'key', 'partition', 'headers', 'mqttHeaders'] as const;
const VALUE_FIELDS = ['format'] as const;
const VALUE_FORMATS = ['raw'] as const;

/** Kafka's limit on partition numbers (a signed 32-bit integer). */
const MAX_PARTITION = 2 ** 31 - 1;
/** Kafka topic names: these characters, at most 249 of them, not "." or "..". */
const KAFKA_TOPIC_CHARS = /^[A-Za-z0-9._-]*$/;
const MAX_KAFKA_TOPIC_LENGTH = 249;

/** The `uplink` rules of one mapping file, in order; problems are appended to `issues`. */
export function readMappingFile(file: string, text: string, issues: MappingIssue[]): UplinkRule[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      issues.push({ file, line, column: col, message: error.message });
    }
    return [];
  }

  const reader = new NodeReader(file, text, lineCounter, doc, issues);
  const node = reader.resolve(doc.contents);
  if (node === null || reader.isEmpty({ node, at: node })) return [];
  const root = reader.map({ node, at: node });
  if (root === undefined) return [];
  const fields = reader.fields(root, FILE_FIELDS);
  if (fields.downlink !== undefined) {
    reader.report(fields.downlink.key, 'downlink rules are not supported yet');
  }
  // `uplink:` with nothing under it (every rule commented out) is an empty list.
  if (fields.uplink === undefined || reader.isEmpty(fields.uplink)) return [];
  const items = reader.list(fields.uplink) ?? [];
  return items.flatMap((item) => readRule(reader, item) ?? []);
}

function readRule(reader: NodeReader, item: Value): UplinkRule | undefined {
  const map = reader.map(item);
  if (map === undefined) return undefined;
  const before = reader.issueCount;
  const fields = reader.fields(map, RULE_FIELDS, ['name', 'from', 'to']);

  const name = fields.name && reader.string(fields.name);
  if (name?.text === '') reader.report(name.node, 'a rule name must not be empty');
  const filters = fields.from && readFilters(reader, fields.from);
  const scope = filters && captureScope(filters);
  const to = fields.to && readTo(reader, fields.to, scope);
  const value = fields.value ? readValue(reader, fields.value) : { format: 'raw' as const };

  if (reader.issueCount > before || !name || !filters || !to || !value) return undefined;
  return { name: name.text, position: reader.position(name.node), filters, to, value };
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
    const reserved = parsed.value.captures.filter((c) => BUILTIN_VARIABLES.includes(c.name));
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

  const topic = fields.topic && readTemplate(reader, fields.topic, scope);
  if (fields.topic && topic) checkKafkaTopic(reader, fields.topic, topic);
  const key = fields.key && readTemplate(reader, fields.key, scope);
  const partition = fields.partition && readPartition(reader, fields.partition);
  const headers = fields.headers ? readHeaders(reader, fields.headers, scope) : [];
  const mqttHeaders = fields.mqttHeaders
    ? readMqttHeaders(reader, fields.mqttHeaders)
    : DEFAULT_MQTT_HEADERS;

  if (reader.issueCount > before || !topic || !headers || !mqttHeaders) return undefined;
  return { topic, key, partition, headers, mqttHeaders };
}

function readTemplate(
  reader: NodeReader,
  value: Value,
  scope: CaptureScope | undefined,
): Template | undefined {
  const text = reader.string(value);
  if (text === undefined) return undefined;
  const compiled = compileTemplate(text.text, scope);
  if (compiled.ok) return compiled.value;
  reader.reportIn(text, compiled.issues);
  return undefined;
}

/** Catches at load time the topic names Kafka would refuse for every record. */
function checkKafkaTopic(reader: NodeReader, field: Field, topic: Template): void {
  const at = reader.at(field);
  const literal = topic.parts.map((part) => ('text' in part ? part.text : '')).join('');
  if (!KAFKA_TOPIC_CHARS.test(literal)) {
    reader.report(at, 'a Kafka topic name may only contain letters, digits, ".", "_" and "-"');
  } else if (topic.constant === '') {
    reader.report(at, 'a Kafka topic name must not be empty');
  } else if (topic.constant === '.' || topic.constant === '..') {
    reader.report(at, `"${topic.constant}" is not a valid Kafka topic name`);
  } else if (literal.length > MAX_KAFKA_TOPIC_LENGTH) {
    reader.report(at, `a Kafka topic name is at most ${MAX_KAFKA_TOPIC_LENGTH} characters long`);
  }
}

/** `hash` (the producer's partitioner: undefined) or a partition number. */
function readPartition(reader: NodeReader, field: Field): number | undefined {
  const node = field.node;
  if (isScalar(node)) {
    if (node.value === 'hash') return undefined;
    const { value } = node;
    if (
      typeof value === 'number' &&
      Number.isInteger(value) &&
      value >= 0 &&
      value <= MAX_PARTITION
    ) {
      return value;
    }
  }
  reader.report(reader.at(field), 'expected "hash" or a non-negative integer');
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

function readValue(reader: NodeReader, field: Field): UplinkRule['value'] | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const fields = reader.fields(map, VALUE_FIELDS);
  const format = fields.format ? reader.string(fields.format) : undefined;
  if (format === undefined) return fields.format ? undefined : { format: 'raw' };
  if (isOneOf(format.text, VALUE_FORMATS)) return { format: format.text };
  reader.report(
    format.node,
    `unsupported value format "${format.text}" (only "raw" is supported in this version)`,
  );
  return undefined;
}

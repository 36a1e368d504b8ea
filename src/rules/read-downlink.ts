import { isScalar, isSeq } from 'yaml';
import type { AvroSchemas } from './codecs/avro.js';
import { RegistryDecoder } from './codecs/avro-registry.js';
import type { DownlinkValueSpec } from './codecs/downlink-value.js';
import type { DownlinkRule, StartPosition } from './downlink-rule.js';
import { compileDownlinkTemplate, parseRecordField } from './downlink-templates.js';
import type { DownlinkTemplate } from './downlink-templates.js';
import type { ExpirySpec } from './expiry.js';
import { SYS_PROBLEM, isSysTopic, topicNameProblem } from './mqtt-topic-name.js';
import { readFixedKafkaTopic } from './read-template.js';
import {
  MISSING_SCHEMA,
  readFormat,
  readProjection,
  readSchema,
  readSchemaId,
} from './read-value.js';
import { didYouMean } from './suggest.js';
import { NodeReader, isOneOf } from './yaml-nodes.js';
import type { Field, Value } from './yaml-nodes.js';

/*
 * `downlink:` rules: which Kafka records become which MQTT messages. Each reader returns
 * undefined when its part is unusable, having reported why.
 */

const RULE_FIELDS = ['name', 'from', 'to', 'value'] as const;
const FROM_FIELDS = ['topic', 'pattern', 'group', 'start'] as const;
const STARTS = ['earliest', 'latest'] as const;
const TO_FIELDS = [
  'topic',
  'qos',
  'retain',
  'expiry',
  'contentType',
  'responseTopic',
  'correlationData',
  'userProperties',
  'replyFor',
] as const;
const EXPIRY_FIELDS = ['ttl', 'at'] as const;
const VALUE_FIELDS = ['format', 'fields', 'schema', 'schemaId'] as const;
const FORMAT_FIELDS = { raw: [], json: ['fields'], avro: ['fields', 'schema', 'schemaId'] };

/** The header the uplink writes a request's Response Topic to (`mqttHeaders: [responseTopic]`). */
const RESPONSE_TOPIC_VARIABLE = 'header.mqtt-response-topic';
/** The requesting client of a reply whose rule says none: the uplink's `mqtt-client-id` header. */
const DEFAULT_REPLY_FOR = '{header.mqtt-client-id}';

export function readDownlinkRule(
  reader: NodeReader,
  item: Value,
  file: string,
  schemas: AvroSchemas,
): DownlinkRule | undefined {
  const map = reader.map(item);
  if (map === undefined) return undefined;
  const before = reader.issueCount;
  const fields = reader.fields(map, RULE_FIELDS, ['name', 'from', 'to']);
  const name = fields.name && reader.string(fields.name);
  if (name?.text === '') reader.report(name.node, 'a rule name must not be empty');
  const from = fields.from && readFrom(reader, fields.from);
  const to = fields.to && readTo(reader, fields.to);
  const value = fields.value
    ? readDownlinkValue(reader, fields.value, file, schemas)
    : { format: 'raw' as const };
  if (reader.issueCount > before || !name || !from || !to || !value) return undefined;
  return { name: name.text, position: reader.position(name.node), from, to, value };
}

/** `from`: a topic name, a list of them, or `{ topic | pattern, group, start }`. */
function readFrom(reader: NodeReader, field: Field): DownlinkRule['from'] | undefined {
  const position = reader.position(field.key);
  const { node } = field;
  if (isScalar(node) || isSeq(node)) {
    const topics = readTopics(reader, field);
    return topics && { topics, pattern: undefined, group: undefined, start: 'earliest', position };
  }
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const before = reader.issueCount;
  const fields = reader.fields(map, FROM_FIELDS);
  if (fields.topic && fields.pattern) {
    reader.report(fields.pattern.key, 'write either "topic" or "pattern", not both');
  } else if (!fields.topic && !fields.pattern) {
    reader.report(map, 'missing required field "topic" (a name or a list) or "pattern"');
  }
  const topics = fields.topic && readTopics(reader, fields.topic);
  const pattern = fields.pattern && readPattern(reader, fields.pattern);
  const group = fields.group && reader.string(fields.group);
  if (group?.text === '') reader.report(group.node, 'a consumer group id must not be empty');
  const start = fields.start ? readStart(reader, fields.start) : 'earliest';
  if (reader.issueCount > before || start === undefined) return undefined;
  return { topics, pattern, group: group?.text, start, position };
}

function readTopics(reader: NodeReader, field: Field): string[] | undefined {
  const before = reader.issueCount;
  const list = isSeq(field.node);
  const items = list ? (reader.list(field) ?? []) : [field];
  if (items.length === 0) reader.report(reader.at(field), 'expected at least one Kafka topic');
  const topics: string[] = [];
  for (const item of items) {
    if (!isScalar(item.node) || typeof item.node.value !== 'string') {
      reader.report(reader.at(item), list ? 'expected a string' : 'expected a string or a list');
      continue;
    }
    const topic = readFixedKafkaTopic(reader, item);
    if (topic === undefined) continue;
    if (topics.includes(topic)) reader.report(item.node, `topic "${topic}" is listed twice`);
    topics.push(topic);
  }
  return reader.issueCount > before ? undefined : topics;
}

/** A regular expression that must match a whole topic name. */
function readPattern(reader: NodeReader, field: Field): RegExp | undefined {
  const text = reader.string(field);
  if (text === undefined) return undefined;
  if (text.text === '') {
    reader.report(text.node, 'a topic pattern must not be empty');
    return undefined;
  }
  try {
    return new RegExp(`^(?:${text.text})$`);
  } catch (error) {
    reader.report(text.node, `invalid regular expression: ${(error as Error).message}`);
    return undefined;
  }
}

function readStart(reader: NodeReader, field: Field): StartPosition | undefined {
  const text = reader.string(field);
  if (text === undefined) return undefined;
  if (isOneOf(text.text, STARTS)) return text.text;
  const hint = didYouMean(text.text, STARTS) || ` (one of: ${STARTS.join(', ')})`;
  reader.report(text.node, `unknown start "${text.text}"${hint}`);
  return undefined;
}

function readTo(reader: NodeReader, field: Field): DownlinkRule['to'] | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const before = reader.issueCount;
  const fields = reader.fields(map, TO_FIELDS, ['topic']);
  const topic = fields.topic && readMqttTopic(reader, fields.topic, 'topic');
  const qos = fields.qos ? readQos(reader, fields.qos) : 1;
  const retain = fields.retain ? readBoolean(reader, fields.retain) : false;
  const expiry = fields.expiry && readExpiry(reader, fields.expiry);
  const contentType = fields.contentType && readDownlinkTemplate(reader, fields.contentType);
  const responseTopic =
    fields.responseTopic && readMqttTopic(reader, fields.responseTopic, 'response topic');
  const correlationData = fields.correlationData && readHeaderName(reader, fields.correlationData);
  const userProperties = fields.userProperties
    ? readUserProperties(reader, fields.userProperties)
    : [];
  const replyFor = fields.replyFor && readReplyFor(reader, fields.replyFor);
  if (reader.issueCount > before || !topic || qos === undefined || retain === undefined) {
    return undefined;
  }
  if (!userProperties) return undefined;
  return {
    topic,
    qos,
    retain,
    expiry,
    contentType,
    responseTopic,
    correlationData,
    userProperties,
    replyFor: replyFor ?? implicitReplyFor(topic),
  };
}

/** `replyFor`: a template giving the requesting client's id, e.g. `'{header.mqtt-client-id}'`. */
function readReplyFor(reader: NodeReader, field: Field): DownlinkTemplate | undefined {
  const text = reader.string(field);
  if (text === undefined) return undefined;
  if (text.text === '') {
    reader.report(
      text.node,
      'a replyFor template must not be empty (e.g. "{header.mqtt-client-id}")',
    );
    return undefined;
  }
  const compiled = compileDownlinkTemplate(text.text);
  if (compiled.ok) return compiled.value;
  reader.reportIn(text, compiled.issues);
  return undefined;
}

/**
 * Secure by default: a topic taken from the request's Response Topic header is chosen by the
 * device, so such a rule is a reply rule for the client id the uplink wrote with the request.
 */
function implicitReplyFor(topic: DownlinkTemplate): DownlinkTemplate | undefined {
  const readsResponseTopic = topic.parts.some(
    (part) => 'variable' in part && part.variable === RESPONSE_TOPIC_VARIABLE,
  );
  if (!readsResponseTopic) return undefined;
  const compiled = compileDownlinkTemplate(DEFAULT_REPLY_FOR);
  if (!compiled.ok) throw new Error(`invalid default replyFor ${DEFAULT_REPLY_FOR}`);
  return compiled.value;
}

function readDownlinkTemplate(reader: NodeReader, value: Value): DownlinkTemplate | undefined {
  const text = reader.string(value);
  if (text === undefined) return undefined;
  const compiled = compileDownlinkTemplate(text.text);
  if (compiled.ok) return compiled.value;
  reader.reportIn(text, compiled.issues);
  return undefined;
}

/**
 * An MQTT topic template whose fixed text is a valid topic name; a message's topic may not start
 * in `$SYS/` (a variable that renders one is refused per record).
 */
function readMqttTopic(
  reader: NodeReader,
  value: Value,
  what: 'topic' | 'response topic',
): DownlinkTemplate | undefined {
  const topic = readDownlinkTemplate(reader, value);
  if (topic === undefined) return undefined;
  const literal = topic.parts.map((part) => ('text' in part ? part.text : '')).join('');
  const first = topic.parts[0];
  const inSys =
    topic.constant === undefined
      ? first !== undefined && 'text' in first && first.text.startsWith('$SYS/')
      : isSysTopic(topic.constant);
  // An empty literal is fine when variables fill the topic in.
  const problem =
    topicNameProblem(topic.constant ?? (literal === '' ? 'x' : literal)) ??
    (what === 'topic' && inSys ? SYS_PROBLEM : undefined);
  if (problem === undefined) return topic;
  reader.report(reader.at(value), `an MQTT topic name ${problem}`);
  return undefined;
}

function readQos(reader: NodeReader, field: Field): 0 | 1 | 2 | undefined {
  const { node } = field;
  if (isScalar(node) && (node.value === 0 || node.value === 1 || node.value === 2)) {
    return node.value;
  }
  reader.report(reader.at(field), 'expected 0, 1 or 2');
  return undefined;
}

function readBoolean(reader: NodeReader, field: Field): boolean | undefined {
  if (isScalar(field.node) && typeof field.node.value === 'boolean') return field.node.value;
  reader.report(reader.at(field), 'expected true or false');
  return undefined;
}

/** `{ ttl: <seconds> | header.<name> | value.<field> }` or `{ at: header.<name> | value.<field> }`. */
function readExpiry(reader: NodeReader, field: Field): ExpirySpec | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const fields = reader.fields(map, EXPIRY_FIELDS);
  if (fields.ttl && fields.at) {
    reader.report(fields.at.key, 'write either "ttl" or "at", not both');
    return undefined;
  }
  const chosen = fields.ttl ?? fields.at;
  if (chosen === undefined) {
    reader.report(map, 'missing required field "ttl" (seconds) or "at" (a time)');
    return undefined;
  }
  const kind = fields.ttl ? 'ttl' : 'at';
  const { node } = chosen;
  if (kind === 'ttl' && isScalar(node) && typeof node.value === 'number') {
    if (Number.isFinite(node.value) && node.value >= 0) return { kind, seconds: node.value };
    reader.report(node, 'expected a number of seconds (0 or more)');
    return undefined;
  }
  const text = reader.string(
    chosen,
    kind === 'ttl'
      ? 'seconds, "header.<name>" or "value.<field>"'
      : '"header.<name>" or "value.<field>"',
  );
  if (text === undefined) return undefined;
  const parsed = parseRecordField(text.text);
  if ('error' in parsed) {
    reader.report(text.node, parsed.error);
    return undefined;
  }
  return { kind, field: parsed.field, source: text.text };
}

/** `header.<name>`: the header a property is copied from. */
function readHeaderName(reader: NodeReader, field: Field): string | undefined {
  const text = reader.string(field);
  if (text === undefined) return undefined;
  const parsed = parseRecordField(text.text);
  if ('field' in parsed && parsed.field.kind === 'header') return parsed.field.name;
  reader.report(
    text.node,
    'error' in parsed && text.text.startsWith('header.')
      ? parsed.error
      : 'expected "header.<name>"',
  );
  return undefined;
}

/** `all` (every header) or a list of header names. */
function readUserProperties(reader: NodeReader, field: Field): 'all' | string[] | undefined {
  const { node } = field;
  if (isScalar(node) && node.value === 'all') return 'all';
  if (!isSeq(node)) {
    reader.report(reader.at(field), 'expected "all" or a list of header names');
    return undefined;
  }
  const names: string[] = [];
  for (const item of reader.list(field) ?? []) {
    const name = reader.string(item);
    if (name === undefined) continue;
    if (name.text === '') reader.report(name.node, 'a header name must not be empty');
    else if (names.includes(name.text)) reader.report(name.node, `"${name.text}" is listed twice`);
    else names.push(name.text);
  }
  return names;
}

/** `value:` — raw (default), json (validated, optional `fields`) or avro (decoded to JSON). */
function readDownlinkValue(
  reader: NodeReader,
  field: Field,
  file: string,
  schemas: AvroSchemas,
): DownlinkValueSpec | undefined {
  const before = reader.issueCount;
  const read = readFormat(reader, field, VALUE_FIELDS, FORMAT_FIELDS);
  if (read === undefined) return undefined;
  const { format, fields } = read;
  if (format === 'raw') return reader.issueCount > before ? undefined : { format };
  const projection = fields.fields && readProjection(reader, fields.fields);
  if (format === 'json') {
    if (reader.issueCount > before) return undefined;
    return { format, ...(projection && { fields: projection }) };
  }
  const schemaId = fields.schemaId && readDownlinkSchemaId(reader, fields.schemaId);
  if (!fields.schema && schemaId !== 'registry') {
    reader.report(reader.at(field), `${MISSING_SCHEMA}, or schemaId: registry`);
  }
  const type = fields.schema && readSchema(reader, fields.schema, file, schemas);
  if (reader.issueCount > before) return undefined;
  if (schemaId === 'registry') {
    return {
      format,
      registry: new RegistryDecoder(
        reader.position(reader.at(fields.schemaId ?? field)),
        type ? type.type : undefined,
      ),
      schemaFile: type ? type.path : undefined,
      ...(projection && { fields: projection }),
    };
  }
  if (!type) return undefined;
  return {
    format,
    schemaFile: type.path,
    type: type.type,
    ...(schemaId !== undefined && { schemaId }),
    ...(projection && { fields: projection }),
  };
}

/**
 * `schemaId: <id>` (Confluent framing with that id), `schemaId: any` (with any id) or
 * `schemaId: registry` (any id, the writer schema fetched from the schema registry).
 */
function readDownlinkSchemaId(
  reader: NodeReader,
  field: Field,
): number | 'any' | 'registry' | undefined {
  const { node } = field;
  if (isScalar(node) && (node.value === 'any' || node.value === 'registry')) return node.value;
  if (isScalar(node) && typeof node.value === 'string') {
    reader.report(node, 'expected a schema registry id (an integer), "any" or "registry"');
    return undefined;
  }
  return readSchemaId(reader, field);
}

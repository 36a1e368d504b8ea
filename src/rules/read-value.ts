import { isAbsolute, join, dirname } from 'node:path';
import type { Type } from 'avsc';
import { isMap, isScalar } from 'yaml';
import type { AvroSchemas, LoadedSchema } from './codecs/avro.js';
import { RegistrySubject, SUBJECT_STRATEGIES, type SubjectSpec } from './codecs/avro-registry.js';
import { ENVELOPE_FIELDS, type EnvelopeField, type FieldProjection } from './codecs/json.js';
import type { ValueSpec } from './codecs/value.js';
import { FIELD_PATH_RULE, parseFieldPath, type FieldPath } from './payload-json.js';
import { didYouMean } from './suggest.js';
import { isOneOf, type Field, type NodeReader, type Value } from './yaml-nodes.js';

const VALUE_FIELDS = ['format', 'fields', 'envelope', 'schema', 'schemaId', 'subject'] as const;
const VALUE_FORMATS = ['raw', 'json', 'avro'] as const;
type ValueFormat = (typeof VALUE_FORMATS)[number];
/** Which value fields each format takes besides `format`. */
const FORMAT_FIELDS: Record<ValueFormat, readonly string[]> = {
  raw: [],
  json: ['fields', 'envelope'],
  avro: ['fields', 'schema', 'schemaId', 'subject'],
};
const SUBJECT_FIELDS = ['strategy'] as const;
/** What a missing `schema` of an avro value is reported as. */
export const MISSING_SCHEMA =
  'missing required field "schema" (the .avsc file, relative to this file)';
/** Confluent schema ids are unsigned 32-bit integers on the wire. */
const MAX_SCHEMA_ID = 2 ** 32 - 1;

export const RAW_VALUE: ValueSpec = { format: 'raw' };

/** `value:`; `file` locates `.avsc` schema files, which are relative to the mapping file. */
export function readValue(
  reader: NodeReader,
  field: Field,
  file: string,
  schemas: AvroSchemas,
): ValueSpec | undefined {
  const before = reader.issueCount;
  const read = readFormat(reader, field, VALUE_FIELDS, FORMAT_FIELDS);
  if (read === undefined) return undefined;
  const { format, fields } = read;
  const avroFormat = format === 'avro';
  if (avroFormat && !fields.schema) reader.report(reader.at(field), MISSING_SCHEMA);
  if (avroFormat && fields.schemaId && fields.subject) {
    reader.report(
      fields.subject.key,
      'write either "schemaId" (an id registered beforehand) or "subject" (registered by the bridge), not both',
    );
  }
  const projection = fields.fields && readProjection(reader, fields.fields);
  const envelope = fields.envelope && !avroFormat && readEnvelope(reader, fields.envelope);
  const type = fields.schema && avroFormat && readSchema(reader, fields.schema, file, schemas);
  const schemaId = fields.schemaId && avroFormat && readSchemaId(reader, fields.schemaId);
  const subject = fields.subject && type && readSubject(reader, fields.subject, type);
  if (reader.issueCount > before) return undefined;

  switch (format) {
    case 'raw':
      return RAW_VALUE;
    case 'json':
      return {
        format,
        ...(projection && { fields: projection }),
        ...(envelope && { envelope }),
      };
    case 'avro':
      if (!type) return undefined;
      return {
        format,
        schemaFile: type.path,
        type: type.type,
        ...(schemaId !== undefined && schemaId !== false && { schemaId }),
        ...(subject && { registry: subject }),
        ...(projection && { fields: projection }),
      };
  }
}

/**
 * The `format` of a `value:` map (default raw) and its fields; fields that do not apply to the
 * format are reported.
 */
export function readFormat<K extends string>(
  reader: NodeReader,
  field: Field,
  known: readonly K[],
  formatFields: Record<ValueFormat, readonly string[]>,
): { format: ValueFormat; fields: Partial<Record<K, Field>> } | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const fields = reader.fields(map, known);
  const formatField = (fields as Partial<Record<string, Field>>).format;
  const formatText = formatField ? reader.string(formatField) : undefined;
  if (formatField !== undefined && formatText === undefined) return undefined;
  const format = formatText?.text ?? 'raw';
  if (!isOneOf(format, VALUE_FORMATS)) {
    const hint = didYouMean(format, VALUE_FORMATS) || ` (one of: ${VALUE_FORMATS.join(', ')})`;
    reader.report(formatText?.node ?? map, `unknown value format "${format}"${hint}`);
    return undefined;
  }
  for (const [name, value] of Object.entries<Field | undefined>(fields)) {
    if (value && name !== 'format' && !formatFields[format].includes(name)) {
      reader.report(value.key, `"${name}" does not apply to format ${format}`);
    }
  }
  return { format, fields };
}

/**
 * `fields:` — a list of payload fields to keep (`[a, b.c]`, named after their last part) or a
 * map of output name → payload field (`{ temperature: t, unit: meta.unit }`).
 */
export function readProjection(reader: NodeReader, field: Field): FieldProjection | undefined {
  const before = reader.issueCount;
  const pairs: Array<[string, FieldPath]> = [];
  /** `name` undefined: the path's last part. */
  const add = (name: string | undefined, pathValue: Value, at: Value['at']): void => {
    const text = reader.string(pathValue);
    if (text === undefined) return;
    const path = parseFieldPath(text.text);
    if (path === undefined) {
      reader.report(text.node, `invalid payload field "${text.text}" (${FIELD_PATH_RULE})`);
      return;
    }
    const output = name ?? path.segments[path.segments.length - 1] ?? text.text;
    if (pairs.some(([existing]) => existing === output)) {
      reader.report(at, `output field "${output}" is picked twice`);
    } else {
      pairs.push([output, path]);
    }
  };
  if (isMap(field.node)) {
    for (const entry of reader.entries(field.node)) add(entry.name, entry, entry.key);
  } else {
    const items = reader.list(field);
    if (items === undefined) return undefined;
    for (const item of items) add(undefined, item, reader.at(item));
  }
  if (pairs.length === 0 && reader.issueCount === before) {
    reader.report(reader.at(field), 'expected at least one field');
  }
  return reader.issueCount > before ? undefined : pairs;
}

/** `envelope:` — the metadata to wrap around the payload, e.g. `[topic, clientId, timestamp]`. */
function readEnvelope(reader: NodeReader, field: Field): EnvelopeField[] | undefined {
  const items = reader.list(field);
  if (items === undefined) return undefined;
  const envelope: EnvelopeField[] = [];
  for (const item of items) {
    const entry = reader.string(item);
    if (entry === undefined) continue;
    if (!isOneOf(entry.text, ENVELOPE_FIELDS)) {
      const hint =
        didYouMean(entry.text, ENVELOPE_FIELDS) || ` (one of: ${ENVELOPE_FIELDS.join(', ')})`;
      reader.report(entry.node, `unknown envelope field "${entry.text}"${hint}`);
    } else if (envelope.includes(entry.text)) {
      reader.report(entry.node, `"${entry.text}" is listed twice`);
    } else {
      envelope.push(entry.text);
    }
  }
  return envelope;
}

export function readSchema(
  reader: NodeReader,
  field: Field,
  file: string,
  schemas: AvroSchemas,
): ({ path: string } & LoadedSchema) | undefined {
  const text = reader.string(field);
  if (text === undefined) return undefined;
  const path = isAbsolute(text.text) ? text.text : join(dirname(file), text.text);
  const loaded = schemas.load(path);
  if ('error' in loaded) {
    reader.report(text.node, `Avro schema "${text.text}" (${path}): ${loaded.error}`);
    return undefined;
  }
  return { path, ...loaded };
}

/**
 * `subject:` — the schema registry subject the schema is registered under: a name, or
 * `{ strategy: topic-name | record-name | topic-record-name }` (Confluent's naming strategies).
 */
function readSubject(
  reader: NodeReader,
  field: Field,
  schema: { type: Type; text: string },
): RegistrySubject | undefined {
  const position = reader.position(reader.at(field));
  let spec: SubjectSpec;
  if (isMap(field.node)) {
    const fields = reader.fields(field.node, SUBJECT_FIELDS, ['strategy']);
    if (!fields.strategy) return undefined;
    const strategy = reader.string(fields.strategy);
    if (strategy === undefined) return undefined;
    if (!isOneOf(strategy.text, SUBJECT_STRATEGIES)) {
      const hint =
        didYouMean(strategy.text, SUBJECT_STRATEGIES) ||
        ` (one of: ${SUBJECT_STRATEGIES.join(', ')})`;
      reader.report(strategy.node, `unknown subject strategy "${strategy.text}"${hint}`);
      return undefined;
    }
    spec = { kind: 'strategy', strategy: strategy.text };
  } else {
    const name = reader.string(field, 'a subject name or { strategy: topic-name }');
    if (name === undefined) return undefined;
    if (name.text.trim() === '') {
      reader.report(name.node, 'a subject name must not be empty');
      return undefined;
    }
    spec = { kind: 'name', name: name.text };
  }
  const subject = new RegistrySubject(spec, position, schema.text, schema.type);
  // record-name strategies need a named schema, which is known now (a topic is not, here)
  const problem = subject.subjectFor('topic');
  if ('error' in problem) {
    reader.report(reader.at(field), problem.error);
    return undefined;
  }
  return subject;
}

export function readSchemaId(reader: NodeReader, field: Field): number | undefined {
  const { node } = field;
  if (isScalar(node) && typeof node.value === 'number' && Number.isInteger(node.value)) {
    if (node.value >= 0 && node.value <= MAX_SCHEMA_ID) return node.value;
  }
  reader.report(
    reader.at(field),
    `expected a schema registry id (an integer from 0 to ${MAX_SCHEMA_ID})`,
  );
  return undefined;
}

import { isMap, isScalar, isSeq } from 'yaml';
import {
  factCondition,
  payloadCondition,
  userPropertyCondition,
  type Condition,
  type ConditionScalar,
  type Expectation,
  type PublishFact,
} from './conditions.js';
import { FIELD_PATH_RULE, parseFieldPath } from './payload-json.js';
import { NodeReader, type Field, type Value } from './yaml-nodes.js';

const WHERE_FIELDS = [
  'clientId',
  'username',
  'qos',
  'retain',
  'contentType',
  'userProperties',
  'payload',
] as const;

/** Which scalars each publish fact can equal, for load-time checks. */
const FACT_VALUES: Record<PublishFact, { accepts: (v: ConditionScalar) => boolean; what: string }> =
  {
    clientId: { accepts: (v) => typeof v === 'string', what: 'a string' },
    username: { accepts: (v) => typeof v === 'string' || v === null, what: 'a string or null' },
    qos: { accepts: (v) => v === 0 || v === 1 || v === 2, what: '0, 1 or 2' },
    retain: { accepts: (v) => typeof v === 'boolean', what: 'true or false' },
    contentType: { accepts: (v) => typeof v === 'string' || v === null, what: 'a string or null' },
  };

const STRING_VALUES = { accepts: (v: ConditionScalar) => typeof v === 'string', what: 'a string' };
const ANY_SCALAR = { accepts: () => true, what: 'a scalar' };

/** `where:` — a map of conditions that must all hold. */
export function readWhere(reader: NodeReader, field: Field): Condition[] | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const before = reader.issueCount;
  const conditions: Condition[] = [];
  const fields = reader.fields(map, WHERE_FIELDS);
  for (const fact of ['clientId', 'username', 'qos', 'retain', 'contentType'] as const) {
    const value = fields[fact];
    if (value === undefined) continue;
    const expected = readExpectation(
      reader,
      value,
      FACT_VALUES[fact],
      fact === 'username' || fact === 'contentType',
    );
    if (expected !== undefined) conditions.push(factCondition(fact, expected));
  }
  if (fields.userProperties !== undefined) {
    const properties = reader.map(fields.userProperties);
    for (const entry of properties ? reader.entries(properties) : []) {
      const expected = readExpectation(reader, entry, STRING_VALUES, true);
      if (expected !== undefined) conditions.push(userPropertyCondition(entry.name, expected));
    }
  }
  if (fields.payload !== undefined) {
    const payload = reader.map(fields.payload);
    for (const entry of payload ? reader.entries(payload) : []) {
      const path = parseFieldPath(entry.name);
      if (path === undefined) {
        reader.report(entry.key, `invalid payload field "${entry.name}" (${FIELD_PATH_RULE})`);
      }
      const expected = readExpectation(reader, entry, ANY_SCALAR, true);
      if (path !== undefined && expected !== undefined) {
        conditions.push(payloadCondition(path, expected));
      }
    }
  }
  return reader.issueCount > before ? undefined : conditions;
}

/** A scalar, a list of scalars (one of them), or `{ exists: true|false }` where allowed. */
function readExpectation(
  reader: NodeReader,
  value: Value,
  values: { accepts: (v: ConditionScalar) => boolean; what: string },
  existsAllowed: boolean,
): Expectation | undefined {
  const { node } = value;
  if (isMap(node)) {
    const exists = existsAllowed
      ? reader.fields(node, ['exists'] as const, ['exists']).exists
      : undefined;
    if (!existsAllowed) {
      reader.report(node, `expected ${values.what} or a list of them`);
    } else if (exists !== undefined) {
      if (isScalar(exists.node) && typeof exists.node.value === 'boolean') {
        return { kind: 'exists', exists: exists.node.value };
      }
      reader.report(reader.at(exists), 'expected true or false');
    }
    return undefined;
  }
  const items = isSeq(node) ? (reader.list(value) ?? []) : [value];
  if (isSeq(node) && items.length === 0)
    reader.report(reader.at(value), 'expected at least one value');
  const accepted: ConditionScalar[] = [];
  let ok = items.length > 0;
  for (const item of items) {
    const scalar = scalarOf(item);
    if (scalar !== undefined && values.accepts(scalar)) {
      accepted.push(scalar);
    } else {
      const hint = existsAllowed
        ? ', a list of them or { exists: true|false }'
        : ' or a list of them';
      reader.report(reader.at(item), `expected ${values.what}${isSeq(node) ? '' : hint}`);
      ok = false;
    }
  }
  return ok ? { kind: 'oneOf', values: accepted } : undefined;
}

function scalarOf(value: Value): ConditionScalar | undefined {
  const { node } = value;
  if (!isScalar(node) || (node.range?.[0] === node.range?.[1] && node.value === null)) {
    return undefined;
  }
  const scalar = node.value;
  const ok =
    typeof scalar === 'string' ||
    typeof scalar === 'number' ||
    typeof scalar === 'boolean' ||
    scalar === null;
  return ok ? scalar : undefined;
}

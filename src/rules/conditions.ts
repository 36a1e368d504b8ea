import type { FieldPath, PayloadJson } from './payload-json.js';
import type { UplinkPublish } from './types.js';

/** A value a condition compares with: what YAML and JSON scalars have in common. */
export type ConditionScalar = string | number | boolean | null;

/** `field: value` or `field: [a, b]` (one of), or `field: { exists: true|false }`. */
export type Expectation =
  { kind: 'oneOf'; values: readonly ConditionScalar[] } | { kind: 'exists'; exists: boolean };

/** The facts conditions look at. */
export interface ConditionScope {
  publish: UplinkPublish;
  json: PayloadJson;
}

export type Condition = (scope: ConditionScope) => boolean;

/** The publish facts `where` can test, each read as one value (absent: undefined). */
export const PUBLISH_FACTS = {
  clientId: (p: UplinkPublish) => p.clientId,
  username: (p: UplinkPublish) => p.username,
  qos: (p: UplinkPublish) => p.qos,
  retain: (p: UplinkPublish) => p.retain,
  contentType: (p: UplinkPublish) => p.contentType,
} as const;

export type PublishFact = keyof typeof PUBLISH_FACTS;

/** An absent optional fact (no username, no content type) equals `null`. */
export function factCondition(fact: PublishFact, expected: Expectation): Condition {
  const read = PUBLISH_FACTS[fact];
  return ({ publish }) => meets(read(publish), expected, true);
}

/** Every value of the user property `name` (MQTT 5 allows repeats); any one may satisfy it. */
export function userPropertyCondition(name: string, expected: Expectation): Condition {
  return ({ publish }) => {
    const values = publish.userProperties.filter(([n]) => n === name).map(([, value]) => value);
    if (expected.kind === 'exists') return values.length > 0 === expected.exists;
    return values.some((value) => meets(value, expected, false));
  };
}

/** A field of the JSON payload; a payload that is not JSON has no fields. */
export function payloadCondition(path: FieldPath, expected: Expectation): Condition {
  return ({ json }) => meets(json.field(path), expected, false);
}

function meets(value: unknown, expected: Expectation, absentIsNull: boolean): boolean {
  if (expected.kind === 'exists') return (value !== undefined) === expected.exists;
  const actual = value === undefined && absentIsNull ? null : value;
  return expected.values.some((candidate) => candidate === actual);
}

import { PayloadError } from '../errors.js';
import { valueAt } from '../payload-json.js';
import type { FieldPath } from '../payload-json.js';
import type { UplinkPublish } from '../types.js';

/** `fields:` — output name → where it comes from in the payload, in output order. */
export type FieldProjection = ReadonlyArray<readonly [name: string, path: FieldPath]>;

/** What the envelope of a JSON value may carry besides the payload. */
export interface EnvelopeFacts {
  publish: UplinkPublish;
  captures: Readonly<Record<string, string>>;
  timestamp: number;
}

const ENVELOPE_SOURCES = {
  topic: (f: EnvelopeFacts) => f.publish.topic,
  clientId: (f: EnvelopeFacts) => f.publish.clientId,
  username: (f: EnvelopeFacts) => f.publish.username ?? null,
  qos: (f: EnvelopeFacts) => f.publish.qos,
  retain: (f: EnvelopeFacts) => f.publish.retain,
  timestamp: (f: EnvelopeFacts) => f.timestamp,
  contentType: (f: EnvelopeFacts) => f.publish.contentType ?? null,
  userProperties: (f: EnvelopeFacts) => userPropertyObject(f.publish.userProperties),
  captures: (f: EnvelopeFacts) => ({ ...f.captures }),
} as const;

export type EnvelopeField = keyof typeof ENVELOPE_SOURCES;
export const ENVELOPE_FIELDS = Object.keys(ENVELOPE_SOURCES) as EnvelopeField[];

/** The payload's fields picked (and renamed) by `fields`; absent ones are left out. */
export function project(
  value: unknown,
  fields: FieldProjection,
  what = 'payload',
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PayloadError(`${what} is not a JSON object, so "fields" cannot pick from it`);
  }
  const out: Record<string, unknown> = {};
  for (const [name, path] of fields) {
    const picked = valueAt(value, path);
    if (picked !== undefined) out[name] = picked;
  }
  return out;
}

/** `{ <metadata>…, payload: <value> }`, the metadata in the order the rule lists it. */
export function envelope(
  value: unknown,
  fields: readonly EnvelopeField[],
  facts: EnvelopeFacts,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of fields) out[field] = ENVELOPE_SOURCES[field](facts);
  out.payload = value;
  return out;
}

/** User properties as a JSON object; a repeated name becomes a list. */
function userPropertyObject(
  properties: UplinkPublish['userProperties'],
): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const [name, value] of properties) {
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [existing, value];
  }
  return out;
}

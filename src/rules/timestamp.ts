import { PayloadError } from './errors.js';
import type { FieldPath, PayloadJson } from './payload-json.js';

/** `timestamp:` of a rule: when the bridge received the publish, or a JSON payload field. */
export type TimestampSpec = { kind: 'publish' } | { kind: 'field'; path: FieldPath };

/** An ISO 8601 date, at least `YYYY-MM-DD`; Date.parse alone accepts much looser text. */
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Milliseconds since the epoch; throws a PayloadError for a missing or unusable field. */
export function timestampOf(spec: TimestampSpec, json: PayloadJson, now: number): number {
  if (spec.kind === 'publish') return now;
  const value = json.requiredField(spec.path);
  const instant = instantOf(value);
  if (instant !== undefined) return instant;
  throw new PayloadError(
    `timestamp field "${spec.path.source}" is ${JSON.stringify(value)}: expected epoch milliseconds or an ISO 8601 date`,
  );
}

/** Epoch milliseconds (a non-negative integer) or an ISO 8601 date as epoch ms; else undefined. */
export function instantOf(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'string' && ISO_DATE.test(value)) {
    const parsed = Date.parse(value);
    if (!Number.isNaN(parsed) && parsed >= 0) return parsed;
  }
  return undefined;
}

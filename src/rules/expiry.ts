import type { DownlinkScope, RecordField } from './downlink-templates.js';
import { readRecordField } from './downlink-templates.js';
import { PayloadError } from './errors.js';
import { instantOf } from './timestamp.js';

/**
 * `expiry:` of a downlink rule: a time to live in seconds after the record timestamp (a fixed
 * number, or read from a header or value field), or an absolute time read from one.
 */
export type ExpirySpec =
  { kind: 'ttl'; seconds: number } | { kind: 'ttl' | 'at'; field: RecordField; source: string };

/** A whole number of digits: a header's way of writing a number. */
const DIGITS = /^\d+$/;
const NUMBER = /^\d+(\.\d+)?$/;

/**
 * Epoch ms at which the message expires; undefined when the field is absent. Throws a
 * PayloadError when the field holds something else than the rule expects.
 */
export function expiresAt(spec: ExpirySpec, scope: DownlinkScope): number | undefined {
  const recordTime = Number(scope.record.timestamp);
  if ('seconds' in spec) return recordTime + spec.seconds * 1000;
  let value = readRecordField(spec.field, scope);
  if (value === undefined || value === null) return undefined;
  if (spec.kind === 'ttl') {
    if (typeof value === 'string' && NUMBER.test(value)) value = Number(value);
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
      return recordTime + Math.round(value * 1000);
    }
    throw new PayloadError(
      `expiry ttl ${spec.source} is ${JSON.stringify(value)}: expected a number of seconds`,
    );
  }
  if (typeof value === 'string' && DIGITS.test(value)) value = Number(value);
  const instant = instantOf(value);
  if (instant !== undefined) return instant;
  throw new PayloadError(
    `expiry at ${spec.source} is ${JSON.stringify(value)}: expected epoch milliseconds or an ISO 8601 date`,
  );
}

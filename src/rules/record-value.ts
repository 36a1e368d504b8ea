import { isAscii } from 'node:buffer';
import type { DownlinkRecord } from './downlink-types.js';
import { PayloadError } from './errors.js';
import { valueAt } from './payload-json.js';
import type { FieldPath } from './payload-json.js';

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes as UTF-8 text; throws a PayloadError naming `what` when they are not UTF-8. */
export function utf8(bytes: Buffer | string, what: string): string {
  if (typeof bytes === 'string') return bytes;
  // most keys are ASCII: one byte per character, no decoder (TextDecoder costs more per call)
  if (isAscii(bytes)) return bytes.toString('latin1');
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new PayloadError(`${what} is not UTF-8`);
  }
}

/** The record key as text; throws a PayloadError when there is none or it is not UTF-8. */
export function keyText(record: DownlinkRecord): string {
  if (record.key === null) throw new PayloadError('the record has no key');
  return utf8(record.key, 'the record key');
}

/** Every value of header `name`, in order (Kafka allows repeats); [] when absent. */
export function headerValues(record: DownlinkRecord, name: string): Array<Buffer | string> {
  if (!Object.hasOwn(record.headers, name)) return [];
  const value = record.headers[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** The last value of header `name`, or undefined when absent. */
export function lastHeader(record: DownlinkRecord, name: string): Buffer | string | undefined {
  const values = headerValues(record, name);
  return values[values.length - 1];
}

/** The last value of header `name` as text, or undefined; throws when it is not UTF-8. */
export function headerText(record: DownlinkRecord, name: string): string | undefined {
  const value = lastHeader(record, name);
  return value === undefined ? undefined : utf8(value, `header "${name}"`);
}

/**
 * A record value decoded as its rule says (JSON, Avro), at most once however many templates
 * and properties look at it. A tombstone has no value.
 */
export class RecordValue {
  readonly #bytes: Buffer | null;
  readonly #decode: (bytes: Buffer) => unknown;
  #decoded: { value: unknown } | { error: PayloadError } | undefined;

  constructor(bytes: Buffer | null, decode: (bytes: Buffer) => unknown) {
    this.#bytes = bytes;
    this.#decode = decode;
  }

  /** The decoded value; throws a PayloadError for a tombstone or a value that does not decode. */
  value(): unknown {
    if (this.#decoded === undefined) {
      try {
        if (this.#bytes === null) throw new PayloadError('the record has no value (tombstone)');
        this.#decoded = { value: this.#decode(this.#bytes) };
      } catch (error) {
        if (!(error instanceof PayloadError)) throw error;
        this.#decoded = { error };
      }
    }
    if ('error' in this.#decoded) throw this.#decoded.error;
    return this.#decoded.value;
  }

  /** The field at `path`, or undefined when the value lacks it; throws when there is no value. */
  field(path: FieldPath): unknown {
    return valueAt(this.value(), path);
  }

  /** The field at `path`; throws a PayloadError when it is missing. */
  requiredField(path: FieldPath): unknown {
    const value = this.field(path);
    if (value === undefined) throw new PayloadError(`value field "${path.source}" is missing`);
    return value;
  }
}

/** The JSON of a record value: UTF-8 text that parses. */
export function parseJsonValue(bytes: Buffer): unknown {
  const text = utf8(bytes, 'the record value');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new PayloadError(`the record value is not valid JSON: ${(error as Error).message}`);
  }
}

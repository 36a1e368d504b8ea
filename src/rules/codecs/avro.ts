import { readFileSync } from 'node:fs';
import avro from 'avsc';
import type { Schema, Type } from 'avsc';
import { PayloadError } from '../errors.js';

/** Confluent wire format: magic byte 0, then the 4-byte big-endian schema id, then Avro. */
const CONFLUENT_MAGIC = 0;
export const CONFLUENT_HEADER_BYTES = 5;

/** A schema file, parsed. */
export interface LoadedSchema {
  type: Type;
  /** The file's JSON, compact: what a schema registry is given. */
  text: string;
}

/**
 * Avro schemas (`.avsc` files) read while compiling mapping files, each file parsed once.
 * `readText` is the file system unless a test replaces it.
 */
export class AvroSchemas {
  readonly #readText: (path: string) => string;
  readonly #types = new Map<string, LoadedSchema | { error: string }>();

  constructor(readText: (path: string) => string = (path) => readFileSync(path, 'utf8')) {
    this.#readText = readText;
  }

  /** The Avro type in the file at `path`, or why there is none. */
  load(path: string): LoadedSchema | { error: string } {
    let loaded = this.#types.get(path);
    if (loaded === undefined) {
      loaded = this.#read(path);
      this.#types.set(path, loaded);
    }
    return loaded;
  }

  #read(path: string): LoadedSchema | { error: string } {
    let text: string;
    try {
      text = this.#readText(path);
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      return { error: missing ? 'no such file' : (error as Error).message };
    }
    let schema: unknown;
    try {
      schema = JSON.parse(text);
    } catch (error) {
      return { error: `not JSON: ${(error as Error).message}` };
    }
    try {
      return { type: avro.Type.forSchema(schema as Schema), text: JSON.stringify(schema) };
    } catch (error) {
      return { error: `not a valid Avro schema: ${(error as Error).message}` };
    }
  }
}

/** A JSON value as Avro binary (missing fields take their defaults), optionally Confluent-framed. */
export function encodeAvro(type: Type, value: unknown, schemaId: number | undefined): Buffer {
  let avroValue: unknown;
  try {
    avroValue = type.clone(value, { coerceBuffers: true });
  } catch {
    throw new PayloadError(`payload does not match the Avro schema: ${avroMismatch(type, value)}`);
  }
  const body = type.toBuffer(avroValue);
  if (schemaId === undefined) return body;
  const framed = Buffer.allocUnsafe(CONFLUENT_HEADER_BYTES + body.length);
  framed.writeUInt8(CONFLUENT_MAGIC, 0);
  framed.writeUInt32BE(schemaId, 1);
  body.copy(framed, CONFLUENT_HEADER_BYTES);
  return framed;
}

/** Where a value first departs from its Avro type, as `field "a.b": expected "long", got "x"`. */
function avroMismatch(type: Type, value: unknown): string {
  let found: string | undefined;
  type.isValid(value, {
    errorHook: (path, bad, badType) => {
      if (found !== undefined) return;
      const expected = badType.name ?? badType.typeName;
      const where = path.length > 0 ? `field "${path.join('.')}"` : 'the payload';
      found = `${where}: expected ${expected}, got ${bad === undefined ? 'nothing' : JSON.stringify(bad)}`;
    },
  });
  return found ?? 'the value cannot be encoded';
}

/**
 * An Avro record value decoded with `type`. `schemaId` set: the value must be in the Confluent
 * wire format, with that id (or any id for `'any'`).
 */
export function decodeAvro(
  type: Type,
  bytes: Buffer,
  schemaId: number | 'any' | undefined,
): unknown {
  let body = bytes;
  if (schemaId !== undefined) {
    const id = confluentSchemaId(bytes);
    if (schemaId !== 'any' && id !== schemaId) {
      throw new PayloadError(`the record value has schema id ${id}, expected ${schemaId}`);
    }
    body = bytes.subarray(CONFLUENT_HEADER_BYTES);
  }
  try {
    return type.fromBuffer(body);
  } catch (error) {
    throw new PayloadError(
      `the record value is not Avro of the schema: ${(error as Error).message}`,
    );
  }
}

/**
 * The schema id of a value in the Confluent wire format; throws a PayloadError when the value
 * is not in that format.
 */
export function confluentSchemaId(bytes: Buffer): number {
  if (bytes.length < CONFLUENT_HEADER_BYTES || bytes.readUInt8(0) !== CONFLUENT_MAGIC) {
    throw new PayloadError(
      'the record value is not in the Confluent wire format (a zero byte, then a 4-byte schema id)',
    );
  }
  return bytes.readUInt32BE(1);
}

/** A decoded Avro value as JSON text: bytes and fixed values become base64 strings. */
export function avroJson(value: unknown): string {
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, key: string, json: unknown) {
      const original = this[key];
      return Buffer.isBuffer(original) ? original.toString('base64') : json;
    },
  );
}

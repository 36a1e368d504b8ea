import type { Type } from 'avsc';
import type { RecordValue } from '../record-value.js';
import { parseJsonValue } from '../record-value.js';
import { avroJson, decodeAvro } from './avro.js';
import type { RegistryDecoder } from './avro-registry.js';
import { project } from './json.js';
import type { FieldProjection } from './json.js';

/** `value:` of a downlink rule: how a record value becomes an MQTT payload. */
export type DownlinkValueSpec =
  | { format: 'raw' }
  | { format: 'json'; fields?: FieldProjection }
  | {
      format: 'avro';
      /** The `.avsc` file, as resolved from the mapping file's folder. */
      schemaFile: string;
      type: Type;
      /** Set: Confluent wire format, with this schema id or any. */
      schemaId?: number | 'any';
      fields?: FieldProjection;
    }
  | {
      /** `schemaId: registry`: Confluent wire format, the writer schema from a registry. */
      format: 'avro';
      registry: RegistryDecoder;
      /** The reader schema's `.avsc` file, if the rule names one. */
      schemaFile: string | undefined;
      fields?: FieldProjection;
    };

/** How `{value.…}` variables and fields read a record value of this format. */
export function valueDecoder(spec: DownlinkValueSpec): (bytes: Buffer) => unknown {
  if (spec.format !== 'avro') return parseJsonValue;
  if ('registry' in spec) return (bytes) => spec.registry.decode(bytes);
  return (bytes) => decodeAvro(spec.type, bytes, spec.schemaId);
}

/**
 * The MQTT payload of a record: raw bytes, validated JSON (unchanged unless `fields` picks),
 * or Avro decoded to JSON. A tombstone is the empty payload. Throws a PayloadError.
 */
export function payloadOf(
  spec: DownlinkValueSpec,
  bytes: Buffer | null,
  value: RecordValue,
): Buffer {
  if (bytes === null) return Buffer.alloc(0);
  switch (spec.format) {
    case 'raw':
      return bytes;
    case 'json': {
      const parsed = value.value();
      if (spec.fields === undefined) return bytes;
      return Buffer.from(JSON.stringify(project(parsed, spec.fields, 'the record value')));
    }
    case 'avro': {
      const decoded = value.value();
      const out =
        spec.fields === undefined ? decoded : project(decoded, spec.fields, 'the record value');
      return Buffer.from(avroJson(out));
    }
  }
}

import type { Type } from 'avsc';
import type { TemplateScope } from '../templates.js';
import { encodeAvro } from './avro.js';
import type { RegistrySubject } from './avro-registry.js';
import { envelope, project } from './json.js';
import type { EnvelopeField, FieldProjection } from './json.js';

/** `value:` of a rule. */
export type ValueSpec =
  | { format: 'raw' }
  | { format: 'json'; fields?: FieldProjection; envelope?: readonly EnvelopeField[] }
  | {
      format: 'avro';
      /** The `.avsc` file, as resolved from the mapping file's folder. */
      schemaFile: string;
      type: Type;
      /** Set: Confluent wire format with this schema id. */
      schemaId?: number;
      /** Set: Confluent wire format with the id a schema registry gave the schema. */
      registry?: RegistrySubject;
      fields?: FieldProjection;
    };

/** The record value of a publish; throws a PayloadError when the payload does not fit. */
export function encodeValue(spec: ValueSpec, scope: TemplateScope, timestamp: number): Buffer {
  switch (spec.format) {
    case 'raw':
      return scope.publish.payload;
    case 'json': {
      const parsed = scope.json.value();
      // Validated and unchanged: the device's bytes, not a re-serialisation.
      if (spec.fields === undefined && spec.envelope === undefined) return scope.publish.payload;
      const value = spec.fields === undefined ? parsed : project(parsed, spec.fields);
      const out =
        spec.envelope === undefined
          ? value
          : envelope(value, spec.envelope, { ...scope, timestamp });
      return Buffer.from(JSON.stringify(out));
    }
    case 'avro': {
      const parsed = scope.json.value();
      const value = spec.fields === undefined ? parsed : project(parsed, spec.fields);
      const id = spec.registry === undefined ? spec.schemaId : spec.registry.id();
      return encodeAvro(spec.type, value, id);
    }
  }
}

import avro from 'avsc';
import type { Schema, Type } from 'avsc';
import { PayloadError } from '../errors.js';
import type { SourcePosition } from '../types.js';
import { CONFLUENT_HEADER_BYTES, confluentSchemaId } from './avro.js';

/*
 * Avro values whose schema ids come from a schema registry. The rules stay synchronous: uplink
 * subjects are registered before the rules are used (src/schema-registry/prepare.ts), and a
 * downlink record waits, before it is routed, for the writer schema of its id
 * (DownlinkRouter.prepare); routing then only reads caches.
 */

/** Confluent's subject name strategies, as a rule writes them. */
export const SUBJECT_STRATEGIES = ['topic-name', 'record-name', 'topic-record-name'] as const;
export type SubjectStrategy = (typeof SUBJECT_STRATEGIES)[number];

/** `subject:` of an uplink Avro value: a name, or a strategy that derives it. */
export type SubjectSpec =
  { kind: 'name'; name: string } | { kind: 'strategy'; strategy: SubjectStrategy };

/**
 * The registry subject of an uplink rule's Avro value, and the id the registry gave its schema
 * once registered. One per rule and mappings version: a reload registers afresh (cached).
 */
export class RegistrySubject {
  readonly spec: SubjectSpec;
  /** Where `subject:` is written. */
  readonly position: SourcePosition;
  /** The schema file's JSON: what is registered. */
  readonly schema: string;
  /** The schema's full name (`namespace.Name`); undefined for an unnamed type. */
  readonly recordName: string | undefined;
  #registered: { subject: string; id: number } | undefined;

  constructor(spec: SubjectSpec, position: SourcePosition, schema: string, type: Type) {
    this.spec = spec;
    this.position = position;
    this.schema = schema;
    this.recordName = type.name;
  }

  /**
   * The subject for a rule writing to `kafkaTopic` (undefined: the topic depends on the
   * publish), or why there is none.
   */
  subjectFor(kafkaTopic: string | undefined): { subject: string } | { error: string } {
    const { spec } = this;
    if (spec.kind === 'name') return { subject: spec.name };
    const needsTopic = spec.strategy !== 'record-name';
    if (needsTopic && kafkaTopic === undefined) {
      return {
        error:
          `subject strategy ${spec.strategy} needs a fixed Kafka topic, and this rule's topic ` +
          'depends on the publish: name the subject instead',
      };
    }
    const name = this.recordName;
    if (spec.strategy !== 'topic-name' && name === undefined) {
      return {
        error: `subject strategy ${spec.strategy} needs a named schema (a record, enum or fixed)`,
      };
    }
    switch (spec.strategy) {
      case 'topic-name':
        return { subject: `${kafkaTopic ?? ''}-value` };
      case 'record-name':
        return { subject: name ?? '' };
      case 'topic-record-name':
        return { subject: `${kafkaTopic ?? ''}-${name ?? ''}` };
    }
  }

  /** Records the registry's answer (the schema registry preparation does, before use). */
  registered(subject: string, id: number): void {
    this.#registered = { subject, id };
  }

  /** The subject and id, once registered. */
  get registration(): { subject: string; id: number } | undefined {
    return this.#registered;
  }

  /** The schema id to frame values with; a PayloadError when it was never registered. */
  id(): number {
    if (this.#registered === undefined) {
      throw new PayloadError(
        'the schema is not registered: no schema registry was asked for its id ' +
          '(set schemaRegistry.url)',
      );
    }
    return this.#registered.id;
  }
}

/** Where writer schemas come from: a schema registry client. */
export interface WriterSchemaSource {
  /** The registry, for messages. */
  readonly url: string;
  /**
   * The schema with this id. Rejects with an error whose `status` is 404 when the registry has
   * no such id; other rejections are the registry not answering as it should (try again later).
   */
  schemaById(id: number): Promise<{ schema: string; schemaType: string; references: unknown[] }>;
}

type WriterEntry = { type: Type } | { error: string; until: number };

/** How long "no schema with this id" is believed before the registry is asked again. */
const DEFAULT_MISSING_RETRY_MS = 60_000;

/**
 * Writer schemas by id, parsed once and shared by every rule and mappings version: ids are
 * immutable in a registry. Lookups are synchronous; `fetch` fills the cache.
 */
export class WriterSchemas {
  readonly source: WriterSchemaSource;
  readonly #missingRetryMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<number, WriterEntry>();
  readonly #fetching = new Map<number, Promise<void>>();

  constructor(
    source: WriterSchemaSource,
    options: { missingRetryMs?: number; now?: () => number } = {},
  ) {
    this.source = source;
    this.#missingRetryMs = options.missingRetryMs ?? DEFAULT_MISSING_RETRY_MS;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The writer type of `id`, or why it cannot be had (no such id, not Avro); undefined when it
   * has not been fetched (or a "no such id" answer is old enough to ask again).
   */
  get(id: number): { type: Type } | { error: string } | undefined {
    const entry = this.#entries.get(id);
    if (entry && 'error' in entry && entry.until <= this.#now()) return undefined;
    return entry;
  }

  /**
   * Asks the registry for `id` (once for concurrent callers). Resolves when `get(id)` has an
   * answer; rejects when the registry did not answer as it should: nothing is cached then.
   */
  fetch(id: number): Promise<void> {
    let fetching = this.#fetching.get(id);
    if (fetching === undefined) {
      fetching = this.#fetchOnce(id).finally(() => this.#fetching.delete(id));
      this.#fetching.set(id, fetching);
    }
    return fetching;
  }

  async #fetchOnce(id: number): Promise<void> {
    const where = `schema registry ${this.source.url}`;
    let fetched: Awaited<ReturnType<WriterSchemaSource['schemaById']>>;
    try {
      fetched = await this.source.schemaById(id);
    } catch (error) {
      if ((error as { status?: unknown }).status !== 404) throw error;
      this.#entries.set(id, {
        error: `schema id ${id} is not in the ${where}`,
        until: this.#now() + this.#missingRetryMs,
      });
      return;
    }
    this.#entries.set(id, parseWriter(id, fetched, where));
  }
}

function parseWriter(
  id: number,
  fetched: { schema: string; schemaType: string; references: unknown[] },
  where: string,
): WriterEntry {
  const forever = Number.POSITIVE_INFINITY;
  if (fetched.schemaType.toUpperCase() !== 'AVRO') {
    return {
      error: `schema id ${id} (${where}) is ${fetched.schemaType}, not Avro`,
      until: forever,
    };
  }
  try {
    return { type: avro.Type.forSchema(JSON.parse(fetched.schema) as Schema) };
  } catch (error) {
    const references = fetched.references.length > 0 ? ' (it refers to other schemas)' : '';
    return {
      error: `schema id ${id} (${where}) is not a usable Avro schema${references}: ${(error as Error).message}`,
      until: forever,
    };
  }
}

type Reading = { read: (body: Buffer) => unknown } | { error: string };

/**
 * Decodes Confluent-framed Avro values of a downlink rule with `schemaId: registry`: with the
 * writer schema of the value's id, resolved against the rule's reader schema when it has one.
 */
export class RegistryDecoder {
  /** Where `schemaId: registry` is written. */
  readonly position: SourcePosition;
  /** The rule's schema, if any: values are read as this type. */
  readonly reader: Type | undefined;
  #writers: WriterSchemas | undefined;
  /** By writer id: how to read a value (with a resolver when there is a reader schema). */
  readonly #readings = new Map<number, Reading>();

  constructor(position: SourcePosition, reader?: Type) {
    this.position = position;
    this.reader = reader;
  }

  /** Where writer schemas come from (the schema registry preparation sets it). */
  bind(writers: WriterSchemas): void {
    this.#writers = writers;
  }

  get bound(): boolean {
    return this.#writers !== undefined;
  }

  /**
   * A promise when the writer schema of this value must be fetched before it can be decoded;
   * undefined when decoding can go ahead (cached, tombstone, not framed: decode will say).
   */
  prepare(bytes: Buffer | null): Promise<void> | undefined {
    const writers = this.#writers;
    if (bytes === null || writers === undefined || bytes.length < CONFLUENT_HEADER_BYTES) {
      return undefined;
    }
    let id: number;
    try {
      id = confluentSchemaId(bytes);
    } catch {
      return undefined;
    }
    return writers.get(id) === undefined ? writers.fetch(id) : undefined;
  }

  /** The decoded value; throws a PayloadError. */
  decode(bytes: Buffer): unknown {
    const id = confluentSchemaId(bytes);
    const reading = this.#readingOf(id);
    if ('error' in reading) throw new PayloadError(reading.error);
    try {
      return reading.read(bytes.subarray(CONFLUENT_HEADER_BYTES));
    } catch (error) {
      throw new PayloadError(
        `the record value is not Avro of writer schema id ${id}: ${(error as Error).message}`,
      );
    }
  }

  #readingOf(id: number): Reading {
    const cached = this.#readings.get(id);
    if (cached !== undefined) return cached;
    const writers = this.#writers;
    if (writers === undefined) {
      return {
        error: `no schema registry to fetch writer schema id ${id} from (set schemaRegistry.url)`,
      };
    }
    const writer = writers.get(id);
    if (writer === undefined) {
      return { error: `writer schema id ${id} has not been fetched from the schema registry` };
    }
    // a missing id may be registered later: not cached here, WriterSchemas decides when to ask
    if ('error' in writer) return writer;
    const reading = readingOf(writer.type, this.reader, id);
    this.#readings.set(id, reading);
    return reading;
  }
}

function readingOf(writer: Type, reader: Type | undefined, id: number): Reading {
  if (reader === undefined) return { read: (body): unknown => writer.fromBuffer(body) as unknown };
  try {
    const resolver = reader.createResolver(writer);
    return { read: (body): unknown => reader.fromBuffer(body, resolver) as unknown };
  } catch (error) {
    return {
      error: `writer schema id ${id} cannot be read with the rule's schema: ${(error as Error).message}`,
    };
  }
}

import type { SchemaRegistryConfig } from '../config/load.js';
import { WriterSchemas, type RegistrySubject } from '../rules/codecs/avro-registry.js';
import { MappingError, type MappingIssue } from '../rules/errors.js';
import type { Mappings } from '../rules/load.js';
import { SchemaRegistryClient } from './client.js';

/**
 * The bridge's schema registry: the client (`schemaRegistry.*` options) and the writer schemas
 * fetched by id, which every mappings version shares. One per bridge process.
 */
export class SchemaRegistry {
  readonly client: SchemaRegistryClient;
  readonly writers: WriterSchemas;

  constructor(client: SchemaRegistryClient) {
    this.client = client;
    this.writers = new WriterSchemas(client);
  }

  /** Undefined when `schemaRegistry.url` is empty; throws when a file option cannot be read. */
  static fromConfig(config: SchemaRegistryConfig): SchemaRegistry | undefined {
    const client = SchemaRegistryClient.fromConfig(config);
    return client && new SchemaRegistry(client);
  }

  get url(): string {
    return this.client.url;
  }

  close(): void {
    this.client.close();
  }
}

/** An uplink rule's subject, named: what is registered. */
interface Subject {
  binding: RegistrySubject;
  subject: string;
}

/**
 * Problems of registry subjects that need no registry to find: a topic-name strategy on a rule
 * whose Kafka topic depends on the publish. For `mappings validate`.
 */
export function registryIssues(mappings: Mappings): MappingIssue[] {
  return namedSubjects(mappings).issues;
}

/**
 * Readies the schema registry parts of freshly loaded mappings, before they are used (at start
 * and on every reload, before the new version replaces the old): registers (or looks up) the
 * schema of every uplink Avro value with a `subject`, so that encoding frames values with the
 * registry's id without waiting; lets downlink rules with `schemaId: registry` fetch writer
 * schemas. Subjects already registered by this process are not asked again.
 *
 * Throws a MappingError naming the rule's `subject:` position when a subject cannot be named,
 * when a rule needs a registry and none is configured, or when the registry refuses or does not
 * answer (the message names the registry URL and the call).
 */
export async function prepareRegistry(
  mappings: Mappings,
  registry: SchemaRegistry | undefined,
): Promise<void> {
  const { subjects, issues } = namedSubjects(mappings);
  const decoders = mappings.downlink.registryDecoders();
  if (registry === undefined) {
    const none = 'needs a schema registry: set schemaRegistry.url (env BRIDGE_SCHEMA_REGISTRY_URL)';
    for (const { binding } of subjects) issues.push({ ...binding.position, message: none });
    for (const { position } of decoders) {
      issues.push({ ...position, message: `schemaId: registry ${none}` });
    }
  }
  if (issues.length > 0) throw new MappingError(inPositionOrder(issues));
  if (registry === undefined) return;
  const results = await Promise.allSettled(
    subjects.map(({ binding, subject }) => registry.client.register(subject, binding.schema)),
  );
  results.forEach((result, index) => {
    const { binding, subject } = subjects[index] as Subject;
    if (result.status === 'fulfilled') {
      binding.registered(subject, result.value);
    } else {
      const reason = result.reason instanceof Error ? result.reason.message : String(result.reason);
      issues.push({ ...binding.position, message: `subject "${subject}": ${reason}` });
    }
  });
  if (issues.length > 0) throw new MappingError(inPositionOrder(issues));
  for (const decoder of decoders) decoder.bind(registry.writers);
}

function namedSubjects(mappings: Mappings): { subjects: Subject[]; issues: MappingIssue[] } {
  const subjects: Subject[] = [];
  const issues: MappingIssue[] = [];
  for (const rule of mappings.uplink.rules) {
    const { value } = rule;
    if (value.format !== 'avro' || value.registry === undefined) continue;
    const binding = value.registry;
    const named = binding.subjectFor(rule.to.topic.constant);
    if ('error' in named) issues.push({ ...binding.position, message: named.error });
    else subjects.push({ binding, subject: named.subject });
  }
  return { subjects, issues };
}

function inPositionOrder(issues: MappingIssue[]): MappingIssue[] {
  return issues.sort(
    (a, b) =>
      (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.line - b.line || a.column - b.column,
  );
}

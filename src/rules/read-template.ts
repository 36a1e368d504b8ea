import type { CaptureScope, Template } from './templates.js';
import { compileTemplate } from './templates.js';
import type { NodeReader, Value } from './yaml-nodes.js';
import { KAFKA_TOPIC_CHARS, MAX_KAFKA_TOPIC_LENGTH } from './kafka-topic-name.js';

/** Kafka topic names: these characters, at most 249 of them, not "." or "..". */

/** A template; without `scope` only its syntax is checked (the rule's filters are wrong). */
export function readTemplate(
  reader: NodeReader,
  value: Value,
  scope: CaptureScope | undefined,
): Template | undefined {
  const text = reader.string(value);
  if (text === undefined) return undefined;
  const compiled = compileTemplate(text.text, scope);
  if (compiled.ok) return compiled.value;
  reader.reportIn(text, compiled.issues);
  return undefined;
}

/** A Kafka topic template whose fixed text Kafka would accept. */
export function readKafkaTopic(
  reader: NodeReader,
  value: Value,
  scope: CaptureScope | undefined,
): Template | undefined {
  const topic = readTemplate(reader, value, scope);
  if (topic === undefined) return undefined;
  const at = reader.at(value);
  const literal = topic.parts.map((part) => ('text' in part ? part.text : '')).join('');
  const before = reader.issueCount;
  if (!KAFKA_TOPIC_CHARS.test(literal)) {
    reader.report(at, 'a Kafka topic name may only contain letters, digits, ".", "_" and "-"');
  } else if (topic.constant === '') {
    reader.report(at, 'a Kafka topic name must not be empty');
  } else if (topic.constant === '.' || topic.constant === '..') {
    reader.report(at, `"${topic.constant}" is not a valid Kafka topic name`);
  } else if (literal.length > MAX_KAFKA_TOPIC_LENGTH) {
    reader.report(at, `a Kafka topic name is at most ${MAX_KAFKA_TOPIC_LENGTH} characters long`);
  }
  return reader.issueCount > before ? undefined : topic;
}

/** A fixed Kafka topic name (settings, where no publish is there to fill a template). */
export function readFixedKafkaTopic(reader: NodeReader, value: Value): string | undefined {
  const topic = readKafkaTopic(reader, value, undefined);
  if (topic === undefined) return undefined;
  if (topic.constant !== undefined) return topic.constant;
  reader.report(reader.at(value), 'expected a fixed topic name (no variables)');
  return undefined;
}

/** Kafka topic names: these characters, at most 249 of them, not "." or "..". */
export const KAFKA_TOPIC_CHARS = /^[A-Za-z0-9._-]*$/;
export const MAX_KAFKA_TOPIC_LENGTH = 249;

/** What Kafka would refuse in a topic name (a rendered template), or undefined. */
export function kafkaTopicProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name === '.' || name === '..') return 'is not a valid Kafka topic name';
  if (!KAFKA_TOPIC_CHARS.test(name)) return 'may only contain letters, digits, ".", "_" and "-"';
  if (name.length > MAX_KAFKA_TOPIC_LENGTH) {
    return `is longer than ${MAX_KAFKA_TOPIC_LENGTH} characters`;
  }
  return undefined;
}

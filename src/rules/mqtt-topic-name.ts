/** The longest UTF-8 string MQTT can carry [MQTT-1.5.4-1]. */
const MAX_TOPIC_BYTES = 65_535;

/** What makes `topic` unusable as an MQTT topic name, or undefined when it is fine. */
export function topicNameProblem(topic: string): string | undefined {
  // [MQTT-4.7.3-1] a topic name is at least one character long.
  if (topic === '') return 'is empty';
  // [MQTT-3.3.2-2] a topic name must not contain wildcard characters.
  if (topic.includes('+') || topic.includes('#')) return 'contains a wildcard ("+" or "#")';
  // [MQTT-4.7.3-2] no null character.
  if (topic.includes('\u0000')) return 'contains the null character';
  if (Buffer.byteLength(topic) > MAX_TOPIC_BYTES) return `is longer than ${MAX_TOPIC_BYTES} bytes`;
  return undefined;
}

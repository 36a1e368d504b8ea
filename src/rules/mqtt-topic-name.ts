/** The longest UTF-8 string MQTT can carry [MQTT-1.5.4-1]. */
const MAX_TOPIC_BYTES = 65_535;

/** Whether a topic is one of the `$SYS` tree, which only the bridge itself publishes to. */
export function isSysTopic(topic: string): boolean {
  // checked on every publish: most topics are out at the first character
  return topic.charCodeAt(0) === 0x24 && (topic === '$SYS' || topic.startsWith('$SYS/'));
}

/** Why a downlink rule may not deliver to a `$SYS` topic (clients would take it for the bridge's). */
export const SYS_PROBLEM = 'is in $SYS/, where only the bridge itself publishes';

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

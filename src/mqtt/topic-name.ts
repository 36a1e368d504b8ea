/**
 * Checks a topic name used in PUBLISH or as a will topic. Returns what is
 * wrong with it, or undefined when it is valid.
 */
export function topicNameProblem(topic: string): string | undefined {
  // [MQTT-4.7.3-1] at least one character
  if (topic.length === 0) return 'empty topic name';
  // [MQTT-3.3.2-2] no wildcard characters in a topic name
  if (topic.includes('+') || topic.includes('#')) return `wildcard in topic name "${topic}"`;
  // [MQTT-4.7.3-2] no U+0000
  if (topic.includes('\u0000')) return 'null character in topic name';
  return undefined;
}

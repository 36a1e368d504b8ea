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

/**
 * mqtt-packet decodes strings leniently, turning bytes that are not UTF-8 into
 * U+FFFD. Such a string is taken as malformed UTF-8 [MQTT-1.5.4-1] (so a
 * correctly encoded U+FFFD in a topic is refused too).
 */
export function hasMalformedUtf8(text: string): boolean {
  return text.includes('\uFFFD');
}

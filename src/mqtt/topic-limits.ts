import type { Limit } from './limit-refusals.js';

/** `mqtt.maxTopicLevels` and `mqtt.maxTopicLength`: what a topic name or filter may be. */
export interface TopicLimits {
  maxTopicLevels: number;
  /** Bytes, UTF-8 encoded. */
  maxTopicLength: number;
}

/**
 * The limit a topic name or filter breaks, if any. `levelsOf`: the part whose levels count (a
 * shared subscription's filter without its `$share/{group}/`); the length is the whole text's.
 * Cheap on the publish path: one scan for "/" and, only for long topics, the UTF-8 length.
 */
export function topicOverLimit(
  text: string,
  limits: TopicLimits,
  levelsOf: string = text,
): Extract<Limit, 'mqtt.maxTopicLevels' | 'mqtt.maxTopicLength'> | undefined {
  // a UTF-16 code unit is at most 3 bytes in UTF-8
  if (text.length * 3 > limits.maxTopicLength && Buffer.byteLength(text) > limits.maxTopicLength) {
    return 'mqtt.maxTopicLength';
  }
  let levels = 1;
  for (let slash = levelsOf.indexOf('/'); slash !== -1; slash = levelsOf.indexOf('/', slash + 1)) {
    if (++levels > limits.maxTopicLevels) return 'mqtt.maxTopicLevels';
  }
  return undefined;
}

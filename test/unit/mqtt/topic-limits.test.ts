import { describe, expect, it } from 'vitest';
import { topicOverLimit } from '../../../src/mqtt/topic-limits.js';

describe('topicOverLimit', () => {
  const limits = { maxTopicLevels: 3, maxTopicLength: 10 };

  it('counts levels and UTF-8 bytes', () => {
    expect(topicOverLimit('a/b/c', limits)).toBeUndefined();
    expect(topicOverLimit('a/b/c/d', limits)).toBe('mqtt.maxTopicLevels');
    expect(topicOverLimit('//', limits)).toBeUndefined(); // three empty levels
    expect(topicOverLimit('///', limits)).toBe('mqtt.maxTopicLevels');
    expect(topicOverLimit('ééééé', limits)).toBeUndefined(); // 10 bytes
    expect(topicOverLimit('éééééa', limits)).toBe('mqtt.maxTopicLength'); // 11 bytes
  });

  it('counts the levels of the part given (a shared filter without its prefix)', () => {
    expect(topicOverLimit('$share/g/a/b', { ...limits, maxTopicLength: 100 }, 'a/b')).toBe(
      undefined,
    );
  });
});

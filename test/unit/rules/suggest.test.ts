import { describe, expect, it } from 'vitest';
import { closest, didYouMean, levenshtein } from '../../../src/rules/suggest.js';

describe('levenshtein', () => {
  it('counts insertions, deletions and substitutions', () => {
    expect(levenshtein('', '')).toBe(0);
    expect(levenshtein('abc', '')).toBe(3);
    expect(levenshtein('partiton', 'partition')).toBe(1);
    expect(levenshtein('kitten', 'sitting')).toBe(3);
  });
});

describe('closest / didYouMean', () => {
  const fields = ['topic', 'key', 'partition', 'headers', 'mqttHeaders'];

  it('suggests the nearest candidate within distance 2', () => {
    expect(closest('partiton', fields)).toBe('partition');
    expect(closest('heders', fields)).toBe('headers');
    expect(didYouMean('ky', fields)).toBe(' (did you mean "key"?)');
  });

  it('suggests nothing when no candidate is close', () => {
    expect(closest('destination', fields)).toBeUndefined();
    expect(didYouMean('destination', fields)).toBe('');
  });

  it('does not suggest a word that would be rewritten entirely', () => {
    expect(closest('x', ['to'])).toBeUndefined();
  });
});

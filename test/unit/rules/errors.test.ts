import { describe, expect, it } from 'vitest';
import { MappingError, formatIssue, formatPosition } from '../../../src/rules/errors.js';

describe('MappingError', () => {
  it('lists every issue, one per line, as file:line:column: message', () => {
    const error = new MappingError([
      { file: 'mappings/a.yaml', line: 12, column: 7, message: 'unknown field "partiton"' },
      { file: 'mappings/b.yaml', line: 1, column: 1, message: 'expected a map' },
    ]);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('MappingError');
    expect(error.issues).toHaveLength(2);
    expect(error.message).toBe(
      'mappings/a.yaml:12:7: unknown field "partiton"\nmappings/b.yaml:1:1: expected a map',
    );
  });

  it('leaves out line and column for an issue about a whole file', () => {
    const issue = { file: 'nope', line: 0, column: 0, message: 'cannot load mappings' };
    expect(formatIssue(issue)).toBe('nope: cannot load mappings');
    expect(formatPosition(issue)).toBe('nope');
  });
});

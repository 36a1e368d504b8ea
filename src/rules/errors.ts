import type { SourcePosition } from './types.js';

/**
 * One problem found in a mapping file. `line` and `column` are 1-based; both are 0 when the problem
 * concerns the file as a whole (missing, unreadable) rather than a place in it.
 */
export interface MappingIssue extends SourcePosition {
  message: string;
}

/** A problem found while parsing a string (a filter, a template), located by offset in that string. */
export interface OffsetIssue {
  offset: number;
  message: string;
}

/** The outcome of parsing a string that may be wrong in several places at once. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; issues: OffsetIssue[] };

/** `file:line:column`, or `file` for a whole-file position. */
export function formatPosition(position: SourcePosition): string {
  return position.line > 0 ? `${position.file}:${position.line}:${position.column}` : position.file;
}

/** `file:line:column: message`. */
export function formatIssue(issue: MappingIssue): string {
  return `${formatPosition(issue)}: ${issue.message}`;
}

/** The mappings cannot be loaded. `message` lists every issue, one per line. */
export class MappingError extends Error {
  override readonly name = 'MappingError';
  readonly issues: MappingIssue[];

  constructor(issues: MappingIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.issues = issues;
  }
}

/**
 * A publish that a rule cannot turn into a record: its payload is not what the rule expects
 * (not JSON, not valid for the Avro schema, a missing field…). The publish is dead-lettered.
 */
export class PayloadError extends Error {
  override readonly name = 'PayloadError';
}

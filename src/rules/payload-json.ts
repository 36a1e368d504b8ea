import { PayloadError } from './errors.js';

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A field of a JSON payload, as written in mapping files: `a.b.0` (dot-separated names). */
export interface FieldPath {
  source: string;
  segments: readonly string[];
}

export const FIELD_PATH_RULE = 'names separated by ".", none empty';

/** `a.b.c` → a path; undefined when a segment is empty. */
export function parseFieldPath(source: string): FieldPath | undefined {
  const segments = source.split('.');
  return segments.every((segment) => segment !== '') ? { source, segments } : undefined;
}

/**
 * The payload of one publish read as JSON, parsed at most once however many rules, conditions
 * and templates look at it.
 */
export class PayloadJson {
  readonly #payload: Buffer;
  #parsed: { value: unknown } | { error: string } | undefined;

  constructor(payload: Buffer) {
    this.#payload = payload;
  }

  /** The parsed payload; throws a PayloadError when it is not UTF-8 JSON. */
  value(): unknown {
    const parsed = this.#parse();
    if ('error' in parsed) throw new PayloadError(parsed.error);
    return parsed.value;
  }

  /** Whether the payload is UTF-8 JSON. */
  isJson(): boolean {
    return 'value' in this.#parse();
  }

  /** The value at `path`, or undefined when the payload has no such field (or is not JSON). */
  field(path: FieldPath): unknown {
    const parsed = this.#parse();
    return 'value' in parsed ? valueAt(parsed.value, path) : undefined;
  }

  /** The value at `path`; throws a PayloadError when the payload is not JSON or lacks it. */
  requiredField(path: FieldPath): unknown {
    const value = valueAt(this.value(), path);
    if (value === undefined) throw new PayloadError(`payload field "${path.source}" is missing`);
    return value;
  }

  #parse(): { value: unknown } | { error: string } {
    if (this.#parsed !== undefined) return this.#parsed;
    try {
      this.#parsed = { value: JSON.parse(UTF8.decode(this.#payload)) as unknown };
    } catch (error) {
      const reason = error instanceof SyntaxError ? error.message : 'payload is not UTF-8';
      this.#parsed = { error: `payload is not valid JSON: ${reason}` };
    }
    return this.#parsed;
  }
}

/** The value at `path` inside a parsed JSON value; undefined when absent. */
export function valueAt(root: unknown, path: FieldPath): unknown {
  let value = root;
  for (const segment of path.segments) {
    if (Array.isArray(value)) {
      value = /^\d+$/.test(segment) ? (value as unknown[])[Number(segment)] : undefined;
    } else if (typeof value === 'object' && value !== null && Object.hasOwn(value, segment)) {
      value = (value as Record<string, unknown>)[segment];
    } else {
      return undefined;
    }
  }
  return value;
}

/** A JSON value as text in a template: strings as they are, null as nothing, the rest as JSON. */
export function jsonText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  return JSON.stringify(value);
}

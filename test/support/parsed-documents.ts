/**
 * Typed access to parsed YAML/JSON documents (deployment files, dashboards) in tests: each
 * helper throws with the path when the document does not have the shape expected.
 */

export type Json = Record<string, unknown>;

export function object(value: unknown, what: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${what}: not a mapping`);
  }
  return value as Json;
}

export function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what}: not a list`);
  return value;
}

export function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what}: not a string`);
  return value;
}

/** `a.b.c` of a parsed document. */
export function at(node: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => object(value, path)[key], node);
}

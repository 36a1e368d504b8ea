import { LineCounter, isAlias, isMap, isNode, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node, Scalar, YAMLMap } from 'yaml';
import type { MappingIssue, OffsetIssue } from './errors.js';
import { didYouMean } from './suggest.js';
import type { SourcePosition } from './types.js';

/** A node as found in the file, with the node to point at when it is missing or empty. */
export interface Value {
  node: Node | null;
  at: Node;
}

/** A map entry with a string key. */
export interface Field extends Value {
  name: string;
  key: Scalar;
}

export interface StringValue {
  text: string;
  node: Scalar;
}

/**
 * Parses a YAML file and gives its top-level map with a reader over it. Undefined when there is
 * nothing to read: syntax errors (reported with their positions), an empty file, or a top level
 * that is not a map (reported).
 */
export function readTopLevelMap(
  file: string,
  text: string,
  issues: MappingIssue[],
): { reader: NodeReader; root: YAMLMap } | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      issues.push({ file, line, column: col, message: error.message });
    }
    return undefined;
  }
  const reader = new NodeReader(file, text, lineCounter, doc, issues);
  const node = reader.resolve(doc.contents);
  if (node === null || reader.isEmpty({ node, at: node })) return undefined;
  const root = reader.map({ node, at: node });
  return root === undefined ? undefined : { reader, root };
}

/**
 * Reads a parsed YAML document node by node, reporting every problem with the position of the
 * node at fault. Readers return undefined when a value is unusable, after reporting why.
 */
export class NodeReader {
  constructor(
    private readonly file: string,
    private readonly source: string,
    private readonly lineCounter: LineCounter,
    private readonly doc: Document,
    private readonly issues: MappingIssue[],
  ) {}

  /** Grows with every report: a reader compares it before and after to know if a part failed. */
  get issueCount(): number {
    return this.issues.length;
  }

  position(node: Node): SourcePosition {
    return this.positionAt(node.range?.[0] ?? 0);
  }

  report(node: Node, message: string): void {
    this.issues.push({ ...this.position(node), message });
  }

  /**
   * Reports issues found inside a string scalar (a filter, a template) at their exact column
   * when the source spells the value verbatim on one line; otherwise at the scalar.
   */
  reportIn(value: StringValue, issues: readonly OffsetIssue[]): void {
    const { node, text } = value;
    const [start, end] = node.range ?? [0, 0];
    const raw = this.source.slice(start, end);
    let valueStart: number | undefined;
    if (node.type === 'PLAIN' && raw === text) valueStart = start;
    const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
    if (quoted && raw.slice(1, -1) === text) valueStart = start + 1;
    for (const issue of issues) {
      const offset = valueStart === undefined ? start : valueStart + issue.offset;
      this.issues.push({ ...this.positionAt(offset), message: issue.message });
    }
  }

  /** The node to point at for a problem with `value`. */
  at(value: Value): Node {
    return this.isEmpty(value) ? value.at : (value.node ?? value.at);
  }

  /** A value that is absent or written as nothing at all (`key:`), not an explicit `null`. */
  isEmpty(value: Value): boolean {
    const { node } = value;
    if (node === null) return true;
    return isScalar(node) && node.value === null && node.range?.[0] === node.range?.[1];
  }

  /** Follows aliases: the value of `*name` is the node anchored as `&name`. */
  resolve(node: unknown): Node | null {
    if (isAlias(node)) return node.resolve(this.doc) ?? null;
    return isNode(node) ? node : null;
  }

  string(value: Value, expected = 'a string'): StringValue | undefined {
    const { node } = value;
    if (isScalar(node) && typeof node.value === 'string') return { text: node.value, node };
    // `key: {deviceId}` is a YAML flow map, not a template.
    const hint = isMap(node) && node.flow ? ' (quote a value that starts with "{")' : '';
    this.report(this.at(value), `expected ${expected}${hint}`);
    return undefined;
  }

  map(value: Value): YAMLMap | undefined {
    if (isMap(value.node)) return value.node;
    this.report(this.at(value), 'expected a map');
    return undefined;
  }

  list(value: Value): Value[] | undefined {
    const { node } = value;
    if (!isSeq(node)) {
      this.report(this.at(value), 'expected a list');
      return undefined;
    }
    return node.items.map((item) => {
      const resolved = this.resolve(item);
      return { node: resolved, at: resolved ?? node };
    });
  }

  /** The entries of a map; keys that are not strings are reported and skipped. */
  entries(map: YAMLMap): Field[] {
    const fields: Field[] = [];
    for (const pair of map.items) {
      const key = this.resolve(pair.key);
      if (!isScalar(key) || typeof key.value !== 'string') {
        this.report(key ?? map, 'expected a string key');
        continue;
      }
      fields.push({ name: key.value, key, node: this.resolve(pair.value), at: key });
    }
    return fields;
  }

  /**
   * The known fields of a map by name. Unknown ones are reported with a suggestion, missing
   * required ones at the start of the map.
   */
  fields<K extends string>(
    map: YAMLMap,
    known: readonly K[],
    required: readonly K[] = [],
  ): Partial<Record<K, Field>> {
    const fields: Partial<Record<K, Field>> = {};
    for (const field of this.entries(map)) {
      if (isOneOf(field.name, known)) fields[field.name] = field;
      else this.report(field.key, `unknown field "${field.name}"${didYouMean(field.name, known)}`);
    }
    for (const name of required) {
      if (fields[name] === undefined) this.report(map, `missing required field "${name}"`);
    }
    return fields;
  }

  private positionAt(offset: number): SourcePosition {
    const { line, col } = this.lineCounter.linePos(offset);
    return { file: this.file, line, column: col };
  }
}

export function isOneOf<K extends string>(name: string, names: readonly K[]): name is K {
  return (names as readonly string[]).includes(name);
}

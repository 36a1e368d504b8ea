import type { TopicFilter } from './filter.js';

/** Where a filter's capture sits in a matching topic: one level, or all levels from there on. */
interface CaptureSlot {
  name: string;
  level: number;
  rest: boolean;
}

interface Entry<T> {
  value: T;
  /** Insertion sequence number: matches come back in insertion order. */
  seq: number;
  slots: CaptureSlot[];
}

class TrieNode<T> {
  readonly literals = new Map<string, TrieNode<T>>();
  /** Child for `+` and `{name}` levels. */
  one: TrieNode<T> | undefined;
  /** Filters ending exactly at this node. */
  readonly ends: Entry<T>[] = [];
  /** Filters ending with `#` or `{name#}` below this node. */
  readonly rests: Entry<T>[] = [];
}

export interface TopicMatch<T> {
  value: T;
  /** Capture name → captured text. Null prototype: names come from user files. */
  captures: Record<string, string>;
}

/**
 * Topic filters compiled into a trie over topic levels. Matching walks the topic's levels, so
 * its cost grows with the topic's depth (and the wildcard branches taken), not with the number
 * of filters.
 */
export class TopicTrie<T> {
  private readonly root = new TrieNode<T>();
  private size = 0;

  insert(filter: TopicFilter, value: T): void {
    let node = this.root;
    const slots: CaptureSlot[] = [];
    const entry: Entry<T> = { value, seq: this.size++, slots };
    for (const [level, spec] of filter.levels.entries()) {
      if (spec.kind === 'rest') {
        if (spec.capture !== undefined) slots.push({ name: spec.capture, level, rest: true });
        node.rests.push(entry);
        return;
      }
      if (spec.kind === 'one') {
        if (spec.capture !== undefined) slots.push({ name: spec.capture, level, rest: false });
        node.one ??= new TrieNode<T>();
        node = node.one;
      } else {
        let child = node.literals.get(spec.text);
        if (child === undefined) {
          child = new TrieNode<T>();
          node.literals.set(spec.text, child);
        }
        node = child;
      }
    }
    node.ends.push(entry);
  }

  /** Every filter matching `topic` (a topic name, without wildcards), in insertion order. */
  match(topic: string): TopicMatch<T>[] {
    const levels = topic.split('/');
    const found: Entry<T>[] = [];
    // [MQTT-4.7.2-1] a filter starting with a wildcard must not match a topic name starting
    // with "$": skip the root's wildcard branches for such topics.
    const system = topic.startsWith('$');
    const stack: Array<[TrieNode<T>, number]> = [[this.root, 0]];
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      const [node, depth] = next;
      const wildcards = depth > 0 || !system;
      // [MQTT-4.7.1-1] "#" also matches the parent level: "a/#" matches "a".
      if (wildcards) found.push(...node.rests);
      if (depth === levels.length) {
        found.push(...node.ends);
        continue;
      }
      const child = node.literals.get(levels[depth] ?? '');
      if (child !== undefined) stack.push([child, depth + 1]);
      if (wildcards && node.one !== undefined) stack.push([node.one, depth + 1]);
    }
    if (found.length > 1) found.sort((a, b) => a.seq - b.seq);
    return found.map((entry) => ({ value: entry.value, captures: capture(entry.slots, levels) }));
  }
}

function capture(slots: CaptureSlot[], levels: string[]): Record<string, string> {
  const captures = Object.create(null) as Record<string, string>;
  for (const slot of slots) {
    captures[slot.name] = slot.rest
      ? levels.slice(slot.level).join('/')
      : (levels[slot.level] ?? '');
  }
  return captures;
}

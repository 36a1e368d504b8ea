/*
 * A set of allowed MQTT topic patterns (topic filters: `+` one level, `#` every remaining level,
 * also none), stored as a trie over levels. It answers two questions:
 *
 *   matches(topic)  may a client publish to this topic name?
 *   covers(filter)  is every topic the filter can match allowed, i.e. may a client subscribe?
 *
 * As MQTT says for subscriptions [MQTT-4.7.2-1], a pattern starting with `+` or `#` does not
 * match topics starting with `$`: `#` allows neither publishing to nor subscribing to `$SYS/x`.
 */

class PatternNode {
  readonly children = new Map<string, PatternNode>();
  plus: PatternNode | undefined = undefined;
  /** A pattern ends here. */
  end = false;
  /** A pattern `<this node's levels>/#` exists: this node and everything below is allowed. */
  hash = false;
}

/** Allowed topic patterns; add valid topic filters (no `$share/` prefix). */
export class TopicPatternSet {
  private readonly root = new PatternNode();

  add(pattern: string): void {
    let node = this.root;
    for (const level of pattern.split('/')) {
      if (level === '#') {
        node.hash = true;
        return;
      }
      if (level === '+') {
        node.plus ??= new PatternNode();
        node = node.plus;
      } else {
        let child = node.children.get(level);
        if (child === undefined) {
          child = new PatternNode();
          node.children.set(level, child);
        }
        node = child;
      }
    }
    node.end = true;
  }

  /** Whether some pattern matches the topic name. */
  matches(topic: string): boolean {
    const levels = topic.split('/');
    return matchFrom(this.root, levels, levels[0]?.startsWith('$') === true);
  }

  /**
   * Whether the patterns together match every topic the (valid, unshared) filter matches.
   * `a/#` covers `a/+/b` and `a`; `a/+` and `a/+/#` together cover `a/+/#`, neither alone.
   */
  covers(filter: string): boolean {
    const levels = filter.split('/');
    return coveredFrom(this.root, levels, levels[0]?.startsWith('$') === true);
  }
}

/**
 * Whether some pattern matches the topic's levels. Loops over an explicit stack, not recursion:
 * a topic may have tens of thousands of levels.
 */
function matchFrom(root: PatternNode, levels: string[], dollar: boolean): boolean {
  const nodes: PatternNode[] = [root];
  const depths: number[] = [0];
  for (let node = nodes.pop(); node !== undefined; node = nodes.pop()) {
    const index = depths.pop() ?? 0;
    // A leading `#` or `+` (at the root) does not match a `$` topic.
    const wildcardsApply = index > 0 || !dollar;
    if (node.hash && wildcardsApply) return true;
    const level = levels[index];
    if (level === undefined) {
      if (node.end) return true;
      continue;
    }
    if (wildcardsApply && node.plus !== undefined) {
      nodes.push(node.plus);
      depths.push(index + 1);
    }
    const child = node.children.get(level);
    if (child !== undefined) {
      nodes.push(child);
      depths.push(index + 1);
    }
  }
  return false;
}

/*
 * Coverage explores the filter's topics against the set of trie nodes they can be at. A
 * wildcard level of the filter stands for any text; the hardest text to cover is one no pattern
 * names (a literal only ever adds nodes), so a wildcard level follows only `+` branches.
 */

/** Whether every topic matching the filter's levels is matched; one step per level, no recursion. */
function coveredFrom(root: PatternNode, levels: string[], dollar: boolean): boolean {
  let nodes = [root];
  for (let index = 0; ; index++) {
    const wildcardsApply = index > 0 || !dollar;
    if (wildcardsApply && nodes.some((node) => node.hash)) return true;
    const level = levels[index];
    if (level === undefined) return nodes.some((node) => node.end);
    // no pattern reaches this deep: nothing below is matched
    if (nodes.length === 0) return false;
    if (level === '#') {
      // `#` matches its parent too (`a/#` matches `a`), except at the start of a filter.
      if (index > 0 && !nodes.some((node) => node.end)) return false;
      // One more level, then another …: each depth must be matched, until a `#` pattern is met.
      for (let next = plusChildren(nodes); next.length > 0; next = plusChildren(next)) {
        if (next.some((node) => node.hash)) return true;
        if (!next.some((node) => node.end)) return false;
      }
      return false;
    }
    if (level === '+') {
      nodes = plusChildren(nodes);
      continue;
    }
    const next: PatternNode[] = [];
    for (const node of nodes) {
      const child = node.children.get(level);
      if (child !== undefined) next.push(child);
      if (wildcardsApply && node.plus !== undefined) next.push(node.plus);
    }
    nodes = next;
  }
}

function plusChildren(nodes: PatternNode[]): PatternNode[] {
  return nodes.flatMap((node) => (node.plus === undefined ? [] : [node.plus]));
}

/**
 * The topics two valid, unshared topic filters both match, as one filter; undefined when they
 * share none. `a/+/#` and `+/b` give `a/b`; `#` and `$SYS/#` give none (a leading wildcard does
 * not match `$` topics).
 */
export function intersectFilters(a: string, b: string): string | undefined {
  const left = a.split('/');
  const right = b.split('/');
  const levels: string[] = [];
  for (let index = 0; ; index++) {
    const l = left[index];
    const r = right[index];
    if (l === '#') {
      levels.push(...right.slice(index));
      break;
    }
    if (r === '#') {
      levels.push(...left.slice(index));
      break;
    }
    if (l === undefined && r === undefined) break;
    if (l === undefined || r === undefined) return undefined;
    if (l === '+') levels.push(r);
    else if (r === '+' || l === r) levels.push(l);
    else return undefined;
  }
  const first = levels[0] ?? '';
  const wildcardFirst = (level: string | undefined) => level === '+' || level === '#';
  if (first.startsWith('$') && (wildcardFirst(left[0]) || wildcardFirst(right[0]))) {
    return undefined;
  }
  return levels.join('/');
}

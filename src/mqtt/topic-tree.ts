/**
 * The broker's subscription index: which sessions want a message published
 * to a topic name.
 *
 * Filters are stored in a trie over topic levels. Each node has literal
 * children by level text, one child for `+`, the subscriptions whose filter
 * ends at the node, and the subscriptions whose filter ends with `#` right
 * below the node. Matching walks the topic's levels, so its cost grows with
 * the topic's depth and the number of wildcard branches that match, not with
 * the number of subscriptions. Removing a node's last subscription prunes the
 * nodes left empty, so churn does not leak memory.
 *
 * Spec rule ids are from MQTT 3.1.1 unless marked otherwise; where MQTT 5.0
 * numbers a rule differently both are given.
 */

export interface ParsedFilter {
  /** The filter as matched (without a $share/group/ or $queue/ prefix). */
  filter: string;
  /** Share group name for $share/{group}/{filter}, and "$queue" for $queue/{filter}; undefined for a normal subscription. */
  shareGroup: string | undefined;
}

export interface Match<T> {
  clientId: string;
  value: T;
}

export interface SharedMatch<T> {
  group: string;
  filter: string;
  members: Array<Match<T>>;
}

const SHARE_PREFIX = '$share/';
const QUEUE_PREFIX = '$queue/';
/** The group name `$queue/{filter}` subscriptions share. */
const QUEUE_GROUP = '$queue';
/** Longest UTF-8 encoding of a topic filter, in bytes [MQTT-4.7.3-3]. */
const MAX_FILTER_BYTES = 65_535;

/** Parses and validates a SUBSCRIBE/UNSUBSCRIBE topic filter; returns a problem string when invalid. */
export function parseTopicFilter(text: string): ParsedFilter | { problem: string } {
  // [MQTT-4.7.3-1] at least one character
  if (text.length === 0) return { problem: 'empty topic filter' };
  // [MQTT-4.7.3-2] no U+0000 (which also keeps share names free of it)
  if (text.includes('\u0000')) return { problem: 'null character in topic filter' };
  // [MQTT-4.7.3-3] at most 65,535 bytes once encoded
  if (encodesLongerThan(text, MAX_FILTER_BYTES)) {
    return { problem: `topic filter longer than ${MAX_FILTER_BYTES} bytes` };
  }

  let filter = text;
  let shareGroup: string | undefined;
  if (text.startsWith(SHARE_PREFIX)) {
    // MQTT 5.0 §4.8.2: $share/{ShareName}/{filter}. A bare "$share" does not start with
    // "$share/", so it is an ordinary (if useless) filter.
    const rest = text.slice(SHARE_PREFIX.length);
    const slash = rest.indexOf('/');
    const group = slash === -1 ? rest : rest.slice(0, slash);
    // [MQTT-4.8.2-1] (5.0) the ShareName is at least one character long
    if (group.length === 0) return { problem: `empty share name in "${text}"` };
    // [MQTT-4.8.2-2] (5.0) the ShareName contains no "/", "+" or "#" ("/" ends it)
    if (group.includes('+') || group.includes('#')) {
      return { problem: `wildcard in share name "${group}"` };
    }
    // [MQTT-4.8.2-2] (5.0) the ShareName is followed by "/" and a topic filter
    if (slash === -1 || slash === rest.length - 1) {
      return { problem: `no topic filter after the share name in "${text}"` };
    }
    filter = rest.slice(slash + 1);
    shareGroup = group;
  } else if (text.startsWith(QUEUE_PREFIX)) {
    // EMQX's $queue/{filter} (shared subscriptions for MQTT 3.1.1 devices) is the same as
    // $share/$queue/{filter}.
    filter = text.slice(QUEUE_PREFIX.length);
    if (filter.length === 0) return { problem: `no topic filter after "$queue/" in "${text}"` };
    shareGroup = QUEUE_GROUP;
  }

  const problem = wildcardProblem(filter, text);
  return problem === undefined ? { filter, shareGroup } : { problem };
}

/** Checks where the wildcards of a filter (share prefix removed) stand. */
function wildcardProblem(filter: string, text: string): string | undefined {
  if (!filter.includes('+') && !filter.includes('#')) return undefined;
  const levels = filter.split('/');
  const last = levels.length - 1;
  for (const [index, level] of levels.entries()) {
    if (level === '#') {
      // [MQTT-4.7.1-2] ([MQTT-4.7.1-1] in 5.0) "#" is the last character of the filter
      if (index !== last) return `"#" is not the last level of topic filter "${text}"`;
    } else if (level.includes('#')) {
      // [MQTT-4.7.1-2] ([MQTT-4.7.1-1] in 5.0) "#" stands alone or follows a "/"
      return `"#" does not occupy a whole level of topic filter "${text}"`;
    } else if (level !== '+' && level.includes('+')) {
      // [MQTT-4.7.1-3] ([MQTT-4.7.1-2] in 5.0) "+" occupies an entire level
      return `"+" does not occupy a whole level of topic filter "${text}"`;
    }
  }
  return undefined;
}

/** Whether the UTF-8 encoding of `text` is longer than `limit` bytes. */
function encodesLongerThan(text: string, limit: number): boolean {
  // A UTF-16 code unit encodes to at most 3 bytes: short strings need no counting.
  if (text.length * 3 <= limit) return false;
  let bytes = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code < 0xdc00 && isLowSurrogate(text.charCodeAt(index + 1))) {
      // A surrogate pair: one code point of 4 bytes.
      bytes += 4;
      index++;
    } else bytes += 3; // lone surrogates count as the 3 bytes of U+FFFD
  }
  return bytes > limit;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code < 0xe000;
}

/** The subscriptions to one filter (as matched): plain ones, and shared ones by group. */
interface Bucket<T> {
  readonly filter: string;
  /** Client id → its subscription, in subscription order. */
  plain: Map<string, Match<T>> | undefined;
  /** Group name → client id → member subscription, in subscription order. */
  shared: Map<string, Map<string, Match<T>>> | undefined;
}

class TrieNode<T> {
  /** Children by literal level text (may be ""). */
  children: Map<string, TrieNode<T>> | undefined = undefined;
  /** Child for a `+` level. */
  plus: TrieNode<T> | undefined = undefined;
  /** Subscriptions whose filter ends at this node. */
  exact: Bucket<T> | undefined = undefined;
  /** Subscriptions whose filter is this node's path followed by `#`. */
  hash: Bucket<T> | undefined = undefined;

  isEmpty(): boolean {
    return (
      this.exact === undefined &&
      this.hash === undefined &&
      this.plus === undefined &&
      (this.children === undefined || this.children.size === 0)
    );
  }
}

/** Where a filter's subscriptions live, and the nodes leading there (for pruning). */
interface Place<T> {
  /** Root first; `path[i + 1]` is the child of `path[i]` for `levels[i]`. */
  path: Array<TrieNode<T>>;
  levels: string[];
  /** Whether the filter ends with `#` (its bucket is the last node's `hash`). */
  multiLevel: boolean;
}

/**
 * Identifies a subscription of one client: the share group (if any) and the filter. U+0000
 * cannot appear in either, so it separates them unambiguously.
 */
function subscriptionKey(parsed: ParsedFilter): string {
  return parsed.shareGroup === undefined
    ? parsed.filter
    : `${parsed.shareGroup}\u0000${parsed.filter}`;
}

export class TopicTree<T> {
  readonly #root = new TrieNode<T>();
  /** Client id → subscription key → parsed filter, for unsubscribeAll. */
  readonly #byClient = new Map<string, Map<string, ParsedFilter>>();
  #size = 0;

  /** Number of subscriptions (shared members included). */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds or replaces the subscription of `clientId` to `filter` (a raw filter string as sent,
   * may be $share/..., $queue/...). Returns true when it replaced an existing one
   * [MQTT-3.8.4-3]. Throws a TypeError for an invalid filter: check it with
   * {@link parseTopicFilter} first.
   */
  subscribe(clientId: string, rawFilter: string, value: T): boolean {
    const parsed = parseTopicFilter(rawFilter);
    if ('problem' in parsed) throw new TypeError(`invalid topic filter: ${parsed.problem}`);
    const bucket = this.#bucket(parsed.filter);
    // Frozen so a caller cannot change the index through a returned match. A replacement
    // gets a new object, so earlier match results keep the value they were given.
    const match: Match<T> = Object.freeze({ clientId, value });
    let members: Map<string, Match<T>>;
    if (parsed.shareGroup === undefined) {
      bucket.plain ??= new Map();
      members = bucket.plain;
    } else {
      bucket.shared ??= new Map();
      let group = bucket.shared.get(parsed.shareGroup);
      if (group === undefined) {
        group = new Map();
        bucket.shared.set(parsed.shareGroup, group);
      }
      members = group;
    }
    // [MQTT-3.8.4-3] a subscription to an identical filter replaces the existing one (for a
    // shared subscription: the same client in the same group on the same filter).
    const replaced = members.has(clientId);
    members.set(clientId, match);
    if (!replaced) {
      this.#size++;
      let own = this.#byClient.get(clientId);
      if (own === undefined) {
        own = new Map();
        this.#byClient.set(clientId, own);
      }
      own.set(subscriptionKey(parsed), parsed);
    }
    return replaced;
  }

  /** Removes it; returns whether it existed (an invalid filter never exists). */
  unsubscribe(clientId: string, rawFilter: string): boolean {
    const parsed = parseTopicFilter(rawFilter);
    if ('problem' in parsed) return false;
    const own = this.#byClient.get(clientId);
    const key = subscriptionKey(parsed);
    if (own?.delete(key) !== true) return false;
    if (own.size === 0) this.#byClient.delete(clientId);
    this.#remove(clientId, parsed);
    return true;
  }

  /** Removes every subscription of a client (session end). */
  unsubscribeAll(clientId: string): void {
    const own = this.#byClient.get(clientId);
    if (own === undefined) return;
    this.#byClient.delete(clientId);
    for (const parsed of own.values()) this.#remove(clientId, parsed);
  }

  /**
   * Non-shared subscriptions matching a topic NAME, and shared groups with at least one
   * member matching it. Each subscription appears once; overlapping subscriptions of one
   * client (`a/+` and `a/#`) are separate matches. The order is deterministic: filter by
   * filter, and within a filter in subscription order. `topic` must be a valid topic name.
   */
  match(topic: string): { subscribers: Array<Match<T>>; shared: Array<SharedMatch<T>> } {
    const subscribers: Array<Match<T>> = [];
    const shared: Array<SharedMatch<T>> = [];
    // [MQTT-4.7.3-1] no topic name is empty; such a topic matches nothing.
    if (topic.length === 0) return { subscribers, shared };
    const levels = topic.split('/');
    // [MQTT-4.7.2-1] a filter starting with a wildcard must not match a topic name starting
    // with "$": the root's `+` and `#` branches are skipped for such topics.
    const system = topic.startsWith('$');
    const collect = (bucket: Bucket<T> | undefined): void => {
      if (bucket === undefined) return;
      if (bucket.plain !== undefined)
        for (const entry of bucket.plain.values()) subscribers.push(entry);
      if (bucket.shared !== undefined) {
        for (const [group, members] of bucket.shared) {
          shared.push({ group, filter: bucket.filter, members: [...members.values()] });
        }
      }
    };
    // Explicit stacks rather than recursion: a topic may have tens of thousands of levels.
    // Each node is reached by one path only, so no subscription is collected twice.
    const nodes: Array<TrieNode<T>> = [this.#root];
    const depths: number[] = [0];
    for (let node = nodes.pop(); node !== undefined; node = nodes.pop()) {
      const depth = depths.pop() ?? 0;
      const wildcards = depth > 0 || !system;
      // [MQTT-4.7.1-2] ([MQTT-4.7.1-1] in 5.0) "#" matches the parent level and any number of
      // child levels: "sport/#" matches "sport", "sport/" and "sport/a/b".
      if (wildcards) collect(node.hash);
      if (depth === levels.length) {
        collect(node.exact);
        continue;
      }
      // Pushed in reverse so literal branches are walked before `+` ones.
      if (wildcards && node.plus !== undefined) {
        nodes.push(node.plus);
        depths.push(depth + 1);
      }
      const child = node.children?.get(levels[depth] ?? '');
      if (child !== undefined) {
        nodes.push(child);
        depths.push(depth + 1);
      }
    }
    return { subscribers, shared };
  }

  /** @internal For tests: trie nodes in use, the root included (1 when empty). */
  nodeCount(): number {
    let count = 0;
    const stack: Array<TrieNode<T>> = [this.#root];
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      count++;
      if (node.plus !== undefined) stack.push(node.plus);
      if (node.children !== undefined) stack.push(...node.children.values());
    }
    return count;
  }

  /** The bucket of a (valid) filter, creating the nodes leading to it. */
  #bucket(filter: string): Bucket<T> {
    const levels = filter.split('/');
    const multiLevel = levels[levels.length - 1] === '#';
    if (multiLevel) levels.pop();
    let node = this.#root;
    for (const level of levels) {
      if (level === '+') {
        node.plus ??= new TrieNode<T>();
        node = node.plus;
        continue;
      }
      node.children ??= new Map();
      let child = node.children.get(level);
      if (child === undefined) {
        child = new TrieNode<T>();
        node.children.set(level, child);
      }
      node = child;
    }
    if (multiLevel) return (node.hash ??= emptyBucket(filter));
    return (node.exact ??= emptyBucket(filter));
  }

  /** Where an existing filter's bucket is; undefined when no node leads there. */
  #find(filter: string): Place<T> | undefined {
    const levels = filter.split('/');
    const multiLevel = levels[levels.length - 1] === '#';
    if (multiLevel) levels.pop();
    const path: Array<TrieNode<T>> = [this.#root];
    let node = this.#root;
    for (const level of levels) {
      const next = level === '+' ? node.plus : node.children?.get(level);
      if (next === undefined) return undefined;
      path.push(next);
      node = next;
    }
    return { path, levels, multiLevel };
  }

  /** Removes a subscription known (from #byClient) to exist, then prunes empty nodes. */
  #remove(clientId: string, parsed: ParsedFilter): void {
    const place = this.#find(parsed.filter);
    if (place === undefined) return;
    const node = place.path[place.path.length - 1] ?? this.#root;
    const bucket = place.multiLevel ? node.hash : node.exact;
    if (bucket === undefined) return;
    let removed: boolean;
    if (parsed.shareGroup === undefined) {
      removed = bucket.plain?.delete(clientId) === true;
      if (bucket.plain?.size === 0) bucket.plain = undefined;
    } else {
      const group = bucket.shared?.get(parsed.shareGroup);
      removed = group?.delete(clientId) === true;
      // A group with no members left is gone: match never returns an empty group.
      if (group?.size === 0) bucket.shared?.delete(parsed.shareGroup);
      if (bucket.shared?.size === 0) bucket.shared = undefined;
    }
    if (removed) this.#size--;
    if (bucket.plain === undefined && bucket.shared === undefined) {
      if (place.multiLevel) node.hash = undefined;
      else node.exact = undefined;
    }
    this.#prune(place);
  }

  /** Detaches the empty nodes at the end of a path, deepest first. */
  #prune({ path, levels }: Place<T>): void {
    for (let index = path.length - 1; index > 0; index--) {
      const node = path[index];
      const parent = path[index - 1];
      const level = levels[index - 1];
      if (node === undefined || parent === undefined || level === undefined) return;
      if (!node.isEmpty()) return;
      if (level === '+') parent.plus = undefined;
      else {
        parent.children?.delete(level);
        if (parent.children?.size === 0) parent.children = undefined;
      }
    }
  }
}

function emptyBucket<T>(filter: string): Bucket<T> {
  return { filter, plain: undefined, shared: undefined };
}

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
  /** The group's round-robin position; lives and dies with the group. */
  cursor: { turn: number };
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

/*
 * Memory: most filters have one subscriber (a device subscribing to its own topic), most
 * nodes one child and most clients a few subscriptions, and a Map costs ~200 bytes even
 * when it holds one entry. So a set of one is stored as its only element, and becomes a
 * Map when a second element arrives (and the element again when it is back to one).
 */

/** Subscriptions by client id: one subscription itself, or a Map of several. */
type Members<T> = Match<T> | Map<string, Match<T>>;

function hasMember<T>(members: Members<T> | undefined, clientId: string): boolean {
  if (members instanceof Map) return members.has(clientId);
  return members?.clientId === clientId;
}

/** Members with `match` added or replaced (a replacement keeps its place in the order). */
function withMember<T>(members: Members<T> | undefined, match: Match<T>): Members<T> {
  if (members instanceof Map) return members.set(match.clientId, match);
  if (members === undefined || members.clientId === match.clientId) return match;
  return new Map([
    [members.clientId, members],
    [match.clientId, match],
  ]);
}

/** Members without `clientId`'s subscription; undefined when none are left. */
function withoutMember<T>(members: Members<T>, clientId: string): Members<T> | undefined {
  if (!(members instanceof Map)) return members.clientId === clientId ? undefined : members;
  members.delete(clientId);
  return members.size === 1 ? members.values().next().value : members;
}

function memberList<T>(members: Members<T>): Array<Match<T>> {
  return members instanceof Map ? [...members.values()] : [members];
}

/** The subscriptions to one filter (as matched): plain ones, and shared ones by group. */
class Bucket<T> {
  plain: Members<T> | undefined = undefined;
  /** Group name → members, in the order the groups were created. */
  shared: Map<string, Members<T>> | undefined = undefined;
  /** Group name → round-robin position. */
  cursors: Map<string, { turn: number }> | undefined = undefined;

  constructor(readonly filter: string) {}

  /** Adds or replaces a subscription; returns whether it replaced one. */
  add(group: string | undefined, match: Match<T>): boolean {
    if (group === undefined) {
      const replaced = hasMember(this.plain, match.clientId);
      this.plain = withMember(this.plain, match);
      return replaced;
    }
    this.shared ??= new Map();
    this.cursors ??= new Map();
    if (!this.cursors.has(group)) this.cursors.set(group, { turn: 0 });
    const members = this.shared.get(group);
    const replaced = hasMember(members, match.clientId);
    this.shared.set(group, withMember(members, match));
    return replaced;
  }

  /** Removes a subscription; returns whether it existed. */
  remove(group: string | undefined, clientId: string): boolean {
    if (group === undefined) {
      if (!hasMember(this.plain, clientId) || this.plain === undefined) return false;
      this.plain = withoutMember(this.plain, clientId);
      return true;
    }
    const members = this.shared?.get(group);
    if (!hasMember(members, clientId) || members === undefined) return false;
    const left = withoutMember(members, clientId);
    // A group with no members left is gone: match never returns an empty group.
    if (left === undefined) {
      this.shared?.delete(group);
      this.cursors?.delete(group);
    } else this.shared?.set(group, left);
    if (this.shared?.size === 0) {
      this.shared = undefined;
      this.cursors = undefined;
    }
    return true;
  }

  isEmpty(): boolean {
    return this.plain === undefined && this.shared === undefined;
  }

  collect(subscribers: Array<Match<T>>, shared: Array<SharedMatch<T>>): void {
    const plain = this.plain;
    if (plain instanceof Map) for (const match of plain.values()) subscribers.push(match);
    else if (plain !== undefined) subscribers.push(plain);
    if (this.shared === undefined) return;
    for (const [group, members] of this.shared) {
      const cursor = this.cursors?.get(group) ?? { turn: 0 };
      shared.push({ group, filter: this.filter, members: memberList(members), cursor });
    }
  }
}

class TrieNode<T> {
  /** Children by literal level text (may be ""): the only child itself, or a Map. */
  children: TrieNode<T> | Map<string, TrieNode<T>> | undefined = undefined;
  /** Child for a `+` level. */
  plus: TrieNode<T> | undefined = undefined;
  /** Subscriptions whose filter ends at this node. */
  exact: Bucket<T> | undefined = undefined;
  /** Subscriptions whose filter is this node's path followed by `#`. */
  hash: Bucket<T> | undefined = undefined;

  /** The level leading to this node from its parent. */
  constructor(readonly level: string) {}

  child(level: string): TrieNode<T> | undefined {
    const children = this.children;
    if (children instanceof Map) return children.get(level);
    return children?.level === level ? children : undefined;
  }

  /** The literal child for `level`, created when missing. */
  addChild(level: string): TrieNode<T> {
    const existing = this.child(level);
    if (existing !== undefined) return existing;
    const child = new TrieNode<T>(level);
    const children = this.children;
    if (children === undefined) this.children = child;
    else if (children instanceof Map) children.set(level, child);
    else {
      this.children = new Map([
        [children.level, children],
        [level, child],
      ]);
    }
    return child;
  }

  removeChild(level: string): void {
    const children = this.children;
    if (children instanceof Map) {
      children.delete(level);
      if (children.size === 1) this.children = children.values().next().value;
    } else if (children?.level === level) this.children = undefined;
  }

  childNodes(): Array<TrieNode<T>> {
    const children = this.children;
    const nodes = children instanceof Map ? [...children.values()] : children ? [children] : [];
    if (this.plus !== undefined) nodes.push(this.plus);
    return nodes;
  }

  isEmpty(): boolean {
    return (
      this.exact === undefined &&
      this.hash === undefined &&
      this.plus === undefined &&
      this.children === undefined
    );
  }
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

function parseSubscriptionKey(key: string): ParsedFilter {
  const separator = key.indexOf('\u0000');
  return separator === -1
    ? { filter: key, shareGroup: undefined }
    : { filter: key.slice(separator + 1), shareGroup: key.slice(0, separator) };
}

/** A valid filter's levels, without a final `#`, and whether it had one. */
function filterPath(filter: string): { levels: string[]; multiLevel: boolean } {
  const levels = filter.split('/');
  const multiLevel = levels[levels.length - 1] === '#';
  if (multiLevel) levels.pop();
  return { levels, multiLevel };
}

/**
 * Subscriptions of clients to topic filters, each with a value of the caller's (for example
 * the subscription options), indexed for matching topic names.
 */
export class TopicTree<T> {
  readonly #root = new TrieNode<T>('');
  /** Client id → key(s) of its subscriptions (see subscriptionKey), for unsubscribeAll. */
  readonly #byClient = new Map<string, string | Set<string>>();
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
    const { levels, multiLevel } = filterPath(parsed.filter);
    let node = this.#root;
    for (const level of levels) {
      node = level === '+' ? (node.plus ??= new TrieNode<T>(level)) : node.addChild(level);
    }
    const bucket = multiLevel
      ? (node.hash ??= new Bucket<T>(parsed.filter))
      : (node.exact ??= new Bucket<T>(parsed.filter));
    // Frozen so a caller cannot change the index through a returned match. A replacement
    // gets a new object, so earlier match results keep the value they were given.
    // [MQTT-3.8.4-3] a subscription to an identical filter replaces the existing one (for a
    // shared subscription: the same client in the same group on the same filter).
    const replaced = bucket.add(parsed.shareGroup, Object.freeze({ clientId, value }));
    if (!replaced) {
      this.#size++;
      const key = subscriptionKey(parsed);
      const own = this.#byClient.get(clientId);
      if (own === undefined) this.#byClient.set(clientId, key);
      else if (typeof own === 'string') this.#byClient.set(clientId, new Set([own, key]));
      else own.add(key);
    }
    return replaced;
  }

  /** Removes it; returns whether it existed (an invalid filter never exists). */
  unsubscribe(clientId: string, rawFilter: string): boolean {
    const parsed = parseTopicFilter(rawFilter);
    if ('problem' in parsed) return false;
    if (!this.#remove(clientId, parsed)) return false;
    const key = subscriptionKey(parsed);
    const own = this.#byClient.get(clientId);
    if (typeof own === 'string') {
      if (own === key) this.#byClient.delete(clientId);
    } else if (own !== undefined) {
      own.delete(key);
      const [only] = own;
      if (own.size === 1 && only !== undefined) this.#byClient.set(clientId, only);
    }
    return true;
  }

  /** Removes every subscription of a client (session end). */
  unsubscribeAll(clientId: string): void {
    const own = this.#byClient.get(clientId);
    if (own === undefined) return;
    this.#byClient.delete(clientId);
    const keys = typeof own === 'string' ? [own] : own;
    for (const key of keys) this.#remove(clientId, parseSubscriptionKey(key));
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
    // Explicit stacks rather than recursion: a topic may have tens of thousands of levels.
    // Each node is reached by one path only, so no subscription is collected twice.
    const nodes: Array<TrieNode<T>> = [this.#root];
    const depths: number[] = [0];
    for (let node = nodes.pop(); node !== undefined; node = nodes.pop()) {
      const depth = depths.pop() ?? 0;
      const wildcards = depth > 0 || !system;
      // [MQTT-4.7.1-2] ([MQTT-4.7.1-1] in 5.0) "#" matches the parent level and any number of
      // child levels: "sport/#" matches "sport", "sport/" and "sport/a/b".
      if (wildcards) node.hash?.collect(subscribers, shared);
      if (depth === levels.length) {
        node.exact?.collect(subscribers, shared);
        continue;
      }
      // Pushed in reverse so literal branches are walked before `+` ones.
      if (wildcards && node.plus !== undefined) {
        nodes.push(node.plus);
        depths.push(depth + 1);
      }
      const child = node.child(levels[depth] ?? '');
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
      for (const child of node.childNodes()) stack.push(child);
    }
    return count;
  }

  /** Removes a subscription and prunes the nodes left empty; returns whether it existed. */
  #remove(clientId: string, parsed: ParsedFilter): boolean {
    const { levels, multiLevel } = filterPath(parsed.filter);
    // Root first; path[i + 1] is the child of path[i] for levels[i].
    const path: Array<TrieNode<T>> = [this.#root];
    let node = this.#root;
    for (const level of levels) {
      const next = level === '+' ? node.plus : node.child(level);
      if (next === undefined) return false;
      path.push(next);
      node = next;
    }
    const bucket = multiLevel ? node.hash : node.exact;
    if (bucket?.remove(parsed.shareGroup, clientId) !== true) return false;
    this.#size--;
    if (bucket.isEmpty()) {
      if (multiLevel) node.hash = undefined;
      else node.exact = undefined;
    }
    // Detach the nodes left empty, deepest first.
    for (let index = path.length - 1; index > 0; index--) {
      const empty = path[index];
      const parent = path[index - 1];
      if (empty === undefined || parent === undefined || !empty.isEmpty()) break;
      if (empty === parent.plus) parent.plus = undefined;
      else parent.removeChild(empty.level);
    }
    return true;
  }
}

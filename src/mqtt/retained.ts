import { isExpired, type BrokerMessage } from './message.js';

/** One topic level of the store: the message retained at this topic, and deeper levels. */
interface LevelNode {
  message: BrokerMessage | undefined;
  children: Map<string, LevelNode>;
}

const newNode = (): LevelNode => ({ message: undefined, children: new Map() });

/** How much the store may hold (`retained.maxMessages`, `retained.maxBytes`). */
export interface RetainedLimits {
  maxMessages: number;
  /** Topic and payload bytes of every message together. */
  maxBytes: number;
}

const UNLIMITED: RetainedLimits = {
  maxMessages: Number.POSITIVE_INFINITY,
  maxBytes: Number.POSITIVE_INFINITY,
};

/** What a message counts against `maxBytes`. */
function bytesOf(message: BrokerMessage): number {
  return Buffer.byteLength(message.topic) + message.payload.length;
}

/**
 * Retained messages by topic [MQTT-3.3.1-5]: a retained publish replaces the
 * topic's message; one with an empty payload deletes it [MQTT-3.3.1-10].
 *
 * Stored in a trie over topic levels, so a subscription costs what its filter
 * matches (a filter without wildcards is one walk down), not the number of
 * retained topics. Emptied branches are pruned; expired messages are removed
 * when a match meets them and by {@link purgeExpired}.
 */
export class RetainedStore {
  readonly #root = newNode();
  readonly #limits: RetainedLimits;
  #size = 0;
  #bytes = 0;

  constructor(limits: RetainedLimits = UNLIMITED) {
    this.#limits = limits;
  }

  /** Number of retained messages (expired ones not yet purged included). */
  get size(): number {
    return this.#size;
  }

  /** Topic and payload bytes of the retained messages. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The most messages it holds (`retained.maxMessages`): also what one subscriber may wait for. */
  get maxMessages(): number {
    return this.#limits.maxMessages;
  }

  /** The message retained at exactly this topic (expired or not), if any: one walk down. */
  get(topic: string): BrokerMessage | undefined {
    return this.#find(topic.split('/'))?.message;
  }

  /**
   * Whether storing the message stays within the limits: a clearing always does, a new topic
   * needs room for one more message, and every message room for its bytes (beyond those of the
   * message it replaces).
   */
  fits(message: BrokerMessage): boolean {
    return this.overLimit(message) === undefined;
  }

  /** The limit storing the message would break, if any (see {@link fits}). */
  overLimit(message: BrokerMessage): 'retained.maxMessages' | 'retained.maxBytes' | undefined {
    if (message.payload.length === 0) return undefined;
    const existing = this.#find(message.topic.split('/'))?.message;
    if (existing === undefined && this.#size >= this.#limits.maxMessages) {
      return 'retained.maxMessages';
    }
    const added = bytesOf(message) - (existing ? bytesOf(existing) : 0);
    return this.#bytes + added <= this.#limits.maxBytes ? undefined : 'retained.maxBytes';
  }

  /**
   * Stores (or, with an empty payload, clears) the topic's retained message. Returns false, and
   * stores nothing, when it does not fit the limits.
   */
  store(message: BrokerMessage): boolean {
    const levels = message.topic.split('/');
    if (message.payload.length === 0) {
      this.#delete(levels);
      return true;
    }
    if (!this.fits(message)) return false;
    let node = this.#root;
    for (const level of levels) {
      let child = node.children.get(level);
      if (!child) {
        child = newNode();
        node.children.set(level, child);
      }
      node = child;
    }
    if (node.message === undefined) this.#size++;
    else this.#bytes -= bytesOf(node.message);
    node.message = message;
    this.#bytes += bytesOf(message);
    return true;
  }

  /** The node of a topic's levels, if the trie has it. */
  #find(levels: string[]): LevelNode | undefined {
    let node: LevelNode | undefined = this.#root;
    for (const level of levels) {
      node = node.children.get(level);
      if (node === undefined) return undefined;
    }
    return node;
  }

  /** Unexpired retained messages whose topic matches `filter`; expired ones are dropped. */
  match(filter: string, now: number): BrokerMessage[] {
    const found: BrokerMessage[] = [];
    const expired: BrokerMessage[] = [];
    const collect = (node: LevelNode): void => {
      const { message } = node;
      if (message === undefined) return;
      if (isExpired(message, now)) expired.push(message);
      else found.push(message);
    };
    const levels = filter.split('/');
    // Explicit stack: filters may have thousands of levels.
    const stack: Array<{ node: LevelNode; depth: number }> = [{ node: this.#root, depth: 0 }];
    for (let entry = stack.pop(); entry !== undefined; entry = stack.pop()) {
      const { node, depth } = entry;
      if (depth === levels.length) {
        collect(node);
        continue;
      }
      const level = levels[depth] as string;
      if (level !== '+' && level !== '#') {
        const child = node.children.get(level);
        if (child) stack.push({ node: child, depth: depth + 1 });
        continue;
      }
      const children: LevelNode[] = [];
      for (const [name, child] of node.children) {
        // [MQTT-4.7.2-1] leading wildcards do not match $-topics
        if (depth > 0 || !name.startsWith('$')) children.push(child);
      }
      if (level === '+') {
        for (const child of children) stack.push({ node: child, depth: depth + 1 });
      } else {
        // [MQTT-4.7.1-2] "#" also matches the parent level (the root holds no message)
        collect(node);
        this.#collectAll(children, collect);
      }
    }
    for (const message of expired) this.#delete(message.topic.split('/'));
    return found;
  }

  /** Removes every expired message; returns how many. */
  purgeExpired(now: number): number {
    const expired: BrokerMessage[] = [];
    this.#collectAll([this.#root], (node) => {
      if (node.message !== undefined && isExpired(node.message, now)) expired.push(node.message);
    });
    for (const message of expired) this.#delete(message.topic.split('/'));
    return expired.length;
  }

  /** Visits `nodes` and everything below them. */
  #collectAll(nodes: LevelNode[], visit: (node: LevelNode) => void): void {
    const stack = [...nodes];
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      visit(node);
      for (const child of node.children.values()) stack.push(child);
    }
  }

  /** Deletes the message at a topic and prunes the branch it leaves empty. */
  #delete(levels: string[]): void {
    const path: LevelNode[] = [this.#root];
    for (const level of levels) {
      const child = path[path.length - 1]?.children.get(level);
      if (!child) return;
      path.push(child);
    }
    const target = path[path.length - 1] as LevelNode;
    if (target.message === undefined) return;
    this.#bytes -= bytesOf(target.message);
    target.message = undefined;
    this.#size--;
    for (let depth = levels.length; depth > 0; depth--) {
      const node = path[depth] as LevelNode;
      if (node.message !== undefined || node.children.size > 0) return;
      path[depth - 1]?.children.delete(levels[depth - 1] as string);
    }
  }
}

import type { BrokerMessage } from './message.js';
import { LongTimer } from './long-timer.js';
import { topicNameProblem } from './topic-name.js';

const PREFIX = '$delay/';

/**
 * EMQX's delayed publish: a PUBLISH to `$delay/{seconds}/{topic}` is published
 * to `{topic}` after that many seconds. Returns undefined for other topics.
 */
export function parseDelayedTopic(
  topic: string,
): { seconds: number; topic: string } | { problem: string } | undefined {
  if (!topic.startsWith(PREFIX)) return undefined;
  const rest = topic.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  const seconds = Number(rest.slice(0, slash));
  if (slash <= 0 || !/^\d+$/.test(rest.slice(0, slash)) || !Number.isSafeInteger(seconds)) {
    return { problem: `"${topic}" is not $delay/{seconds}/{topic}` };
  }
  const target = rest.slice(slash + 1);
  const problem = topicNameProblem(target);
  return problem !== undefined ? { problem } : { seconds, topic: target };
}

/**
 * Messages waiting for their delay, in memory and bounded: once `max` are waiting, or
 * `maxPerClient` of one publisher, more are refused. They are lost if the bridge stops before
 * their time.
 */
export class DelayedPublishes {
  readonly #timers = new Set<LongTimer>();
  /** Messages waiting per publishing client id. */
  readonly #perClient = new Map<string, number>();
  readonly #max: number;
  readonly #maxPerClient: number;
  readonly #publish: (message: BrokerMessage) => void;

  constructor(max: number, maxPerClient: number, publish: (message: BrokerMessage) => void) {
    this.#max = max;
    this.#maxPerClient = maxPerClient;
    this.#publish = publish;
  }

  get size(): number {
    return this.#timers.size;
  }

  /** Takes the message, or says which limit refuses it. */
  schedule(
    message: BrokerMessage,
    seconds: number,
  ): 'scheduled' | 'mqtt.maxDelayedMessages' | 'mqtt.maxDelayedPerClient' {
    if (this.#timers.size >= this.#max) return 'mqtt.maxDelayedMessages';
    const { clientId } = message.origin;
    const own = this.#perClient.get(clientId) ?? 0;
    if (own >= this.#maxPerClient) return 'mqtt.maxDelayedPerClient';
    this.#perClient.set(clientId, own + 1);
    const timer = new LongTimer(seconds * 1000, () => {
      this.#timers.delete(timer);
      this.#release(clientId);
      this.#publish(message);
    });
    this.#timers.add(timer);
    return 'scheduled';
  }

  clear(): void {
    for (const timer of this.#timers) timer.cancel();
    this.#timers.clear();
    this.#perClient.clear();
  }

  #release(clientId: string): void {
    const own = this.#perClient.get(clientId) ?? 1;
    if (own <= 1) this.#perClient.delete(clientId);
    else this.#perClient.set(clientId, own - 1);
  }
}

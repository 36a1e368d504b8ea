import type { QoS } from 'mqtt-packet';
import type { BrokerMessage } from './message.js';
import type { RetainedStore } from './retained.js';
import type { Delivery, Subscription } from './session.js';

/** The retained messages one SUBSCRIBE matched; those from `next` on are still to be sent. */
interface Batch {
  store: RetainedStore;
  messages: readonly BrokerMessage[];
  next: number;
  qos: QoS;
  identifier: number | undefined;
}

/** The session a replay is for: whether a retained message whose turn has come still goes. */
export interface RetainedReceiver {
  wantsRetained(message: BrokerMessage): boolean;
}

/**
 * Retained messages that new subscriptions of a session matched and that are not sent yet, in
 * order. A subscription to `#` may match a million of them: each costs one reference (the
 * array the store's match returned) until it goes, and becomes a Delivery only then. At most
 * `retained.maxMessages` wait at once, whatever the number of subscriptions.
 */
export class RetainedReplay {
  readonly #batches: Batch[] = [];
  #size = 0;

  /** Messages waiting (some may be passed over when their turn comes). */
  get size(): number {
    return this.#size;
  }

  /**
   * Appends the messages a subscription matched, as many as the limit leaves room for;
   * returns how many did not fit.
   */
  add(
    store: RetainedStore,
    messages: BrokerMessage[],
    subscription: Pick<Subscription, 'qos' | 'identifier'>,
  ): number {
    const room = Math.max(0, store.maxMessages - this.#size);
    const kept = messages.length <= room ? messages : messages.slice(0, room);
    if (kept.length > 0) {
      const { qos, identifier } = subscription;
      this.#batches.push({ store, messages: kept, next: 0, qos, identifier });
      this.#size += kept.length;
    }
    return messages.length - kept.length;
  }

  /**
   * The first message still to be sent, as its subscription delivers it; it stays first until
   * {@link take}. Passed over on the way: a message its topic no longer retains (replaced or
   * cleared meanwhile; a replacement went to the subscription live) and one the receiver no longer wants.
   */
  peek(receiver: RetainedReceiver): Delivery | undefined {
    for (let batch = this.#batches[0]; batch !== undefined; batch = this.#batches[0]) {
      const message = batch.messages[batch.next] as BrokerMessage;
      if (batch.store.get(message.topic) === message && receiver.wantsRetained(message)) {
        return {
          message,
          qos: Math.min(message.qos, batch.qos) as QoS,
          // [MQTT-3.3.1-8] sent because of a new subscription: RETAIN is 1
          retain: true,
          subscriptionIds: batch.identifier !== undefined ? [batch.identifier] : [],
        };
      }
      this.#advance(batch);
    }
    return undefined;
  }

  /** Removes the first message (the one {@link peek} returned). */
  take(): void {
    const batch = this.#batches[0];
    if (batch !== undefined) this.#advance(batch);
  }

  clear(): void {
    this.#batches.length = 0;
    this.#size = 0;
  }

  /** Past the first message of the first batch; a finished batch lets go of its array. */
  #advance(batch: Batch): void {
    batch.next++;
    this.#size--;
    if (batch.next === batch.messages.length) this.#batches.shift();
  }
}

import { isExpired, type BrokerMessage } from './message.js';

/**
 * Retained messages by topic [MQTT-3.3.1-5]: a retained publish replaces the
 * topic's message; one with an empty payload deletes it [MQTT-3.3.1-10].
 */
export class RetainedStore {
  readonly #messages = new Map<string, BrokerMessage>();

  store(message: BrokerMessage): void {
    if (message.payload.length === 0) this.#messages.delete(message.topic);
    else this.#messages.set(message.topic, message);
  }

  /** Unexpired retained messages whose topic matches `filter`; expired ones are dropped. */
  match(filter: string, now: number): BrokerMessage[] {
    const levels = filter.split('/');
    const found: BrokerMessage[] = [];
    for (const [topic, message] of this.#messages) {
      if (!filterMatches(levels, topic)) continue;
      if (isExpired(message, now)) this.#messages.delete(topic);
      else found.push(message);
    }
    return found;
  }
}

/** Whether a topic name matches a filter already split into levels. */
function filterMatches(filterLevels: readonly string[], topic: string): boolean {
  // [MQTT-4.7.2-1] leading wildcards do not match $-topics
  if (topic.startsWith('$') && (filterLevels[0] === '+' || filterLevels[0] === '#')) return false;
  const topicLevels = topic.split('/');
  for (let index = 0; index < filterLevels.length; index++) {
    const level = filterLevels[index];
    if (level === '#') return true; // also matches the parent level [MQTT-4.7.1-2]
    if (index >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[index]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

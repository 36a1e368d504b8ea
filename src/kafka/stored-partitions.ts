/**
 * Which partitions of a failed `sendBatch` Kafka stored all the same.
 *
 * KafkaJS sends a batch spanning brokers as one Produce request per broker, in parallel. When
 * one of them fails, `sendBatch` throws, although the others stored their records and moved
 * their partitions' sequence numbers on: sending those records again would write them twice.
 * KafkaJS does not say which those were, so its broker's `produce` is wrapped here: once a
 * Produce request succeeds (every partition in it stored: KafkaJS fails the whole request on any
 * partition's error code, and moves none of its sequence numbers), the first message object of
 * each of its partitions is remembered. The producer pipeline makes new message objects for
 * every attempt and asks afterwards.
 *
 * Installed on KafkaJS's Broker class (2.2.4 only), so it holds for brokers made before too.
 */
import { createRequire } from 'node:module';
import { isPatchedKafkajs } from './kafkajs-module.js';

const require = createRequire(import.meta.url);

interface ProduceArgs {
  topicData?: Array<{ partitions?: Array<{ messages?: unknown[] }> }>;
}

interface Broker {
  produce: (this: Broker, args: ProduceArgs) => Promise<unknown>;
}

/** First messages of the partitions of Produce requests that succeeded. */
const stored = new WeakSet<object>();

let installed: boolean | undefined;

/** Wraps KafkaJS's Broker.produce (once); false when KafkaJS is not the version it knows. */
export function installStoredPartitions(): boolean {
  if (installed !== undefined) return installed;
  installed = false;
  if (!isPatchedKafkajs()) return false;
  const { prototype } = require('kafkajs/src/broker/index.js') as { prototype: Broker };
  const produce = prototype.produce;
  prototype.produce = async function (this: Broker, args: ProduceArgs): Promise<unknown> {
    const response = await produce.call(this, args);
    for (const topic of args.topicData ?? []) {
      for (const { messages } of topic.partitions ?? []) {
        const first = messages?.[0];
        if (typeof first === 'object' && first !== null) markStored(first);
      }
    }
    return response;
  };
  installed = true;
  return true;
}

/** Remembers that Kafka stored the partition's records this message was first of. */
export function markStored(firstMessage: object): void {
  stored.add(firstMessage);
}

/** Whether this message was first of its partition in a Produce request that succeeded. */
export function storedWith(firstMessage: object): boolean {
  return stored.has(firstMessage);
}

/** Whether several partitions may go in one `sendBatch` (their outcomes can be told apart). */
export function partitionOutcomesKnown(): boolean {
  return installed === true;
}

/**
 * KafkaJS (2.2.4) groups a request's messages by partition with
 * `Object.assign(result, { [partition]: [...current, message] })`: a copy of the partition's list
 * for every message, quadratic in the batch size (a 500-record batch copied 125,000 entries).
 * This is the same grouping in linear time, installed over KafkaJS's module before its producer
 * loads it.
 */
import { replaceKafkajsModule } from './kafkajs-module.js';

const GROUPING = 'kafkajs/src/producer/groupMessagesPerPartition.js';
/** The module that takes the grouping function when it loads. */
const USER = 'kafkajs/src/producer/sendMessages.js';

export interface GroupingArgs<M> {
  topic: string;
  partitionMetadata: readonly unknown[];
  messages: readonly M[];
  partitioner: (args: {
    topic: string;
    partitionMetadata: readonly unknown[];
    message: M;
  }) => number;
}

/** The messages of each partition, in their order (an object keyed by partition, as KafkaJS's). */
export function groupMessagesPerPartition<M>({
  topic,
  partitionMetadata,
  messages,
  partitioner,
}: GroupingArgs<M>): Record<number, M[]> {
  const result: Record<number, M[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    const current = result[partition];
    if (current === undefined) result[partition] = [message];
    else current.push(message);
  }
  return result;
}

let installed: boolean | undefined;

/** Puts the linear grouping in place (once); false when KafkaJS's producer was loaded already. */
export function installLinearGrouping(): boolean {
  if (installed !== undefined) return installed;
  installed = replaceKafkajsModule(GROUPING, [USER], () => groupMessagesPerPartition);
  return installed;
}

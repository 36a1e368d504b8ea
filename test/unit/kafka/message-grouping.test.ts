import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  groupMessagesPerPartition,
  type GroupingArgs,
} from '../../../src/kafka/message-grouping.js';
import { installKafkajsPatches } from '../../../src/kafka/kafkajs-patches.js';

const require = createRequire(import.meta.url);
const path = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');

/** KafkaJS's own grouping, read from its file (the cached module may be the linear one). */
function original(): <M>(args: GroupingArgs<M>) => Record<number, M[]> {
  const cached = require.cache[path];
  Reflect.deleteProperty(require.cache, path);
  try {
    return require(path) as <M>(args: GroupingArgs<M>) => Record<number, M[]>;
  } finally {
    if (cached) require.cache[path] = cached;
  }
}

describe('groupMessagesPerPartition', () => {
  it('groups as KafkaJS does', () => {
    const kafkajs = original();
    for (const [count, partitions] of [
      [0, 6],
      [1, 6],
      [500, 6],
      [37, 1],
      [10, 0],
    ] as const) {
      const messages = Array.from({ length: count }, (_, index) => ({ index }));
      const args = {
        topic: 't',
        partitionMetadata: Array.from({ length: partitions }, (_, id) => ({ partitionId: id })),
        messages,
        partitioner: ({ message }: { message: { index: number } }) =>
          (message.index * 7) % Math.max(1, partitions),
      };
      expect(groupMessagesPerPartition(args)).toEqual(kafkajs(args));
    }
  });

  it('is what KafkaJS uses once installed', () => {
    installKafkajsPatches();
    // installed when KafkaJS's producer had not been loaded in this process yet
    const grouping = require(path) as unknown;
    const sendMessages = require.cache[require.resolve('kafkajs/src/producer/sendMessages.js')];
    if (grouping !== groupMessagesPerPartition) expect(sendMessages).toBeDefined();
  });
});

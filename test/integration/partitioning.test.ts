import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { createTopic, readRecords } from '../support/kafka-helpers.js';

/**
 * murmur2 of these keys as Apache Kafka's Java client computes it (the test vectors of Kafka's
 * own UtilsTest.testMurmur2): the default partitioner puts a key in
 * (murmur2(key) & 0x7fffffff) % partitions, and so must the bridge.
 */
const JAVA_MURMUR2: Record<string, number> = {
  '21': -973932308,
  foobar: -790332482,
  'a-little-bit-long-string': -985981536,
  'a-little-bit-longer-string': -1486304829,
  lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8: -58897971,
  abc: 479470107,
};
const PARTITIONS = 6;

let running: RunningBridge;
let topic: string;

beforeAll(async () => {
  topic = await createTopic('murmur2', PARTITIONS);
  running = await startBridge(`
uplink:
  - name: keyed
    from: keyed/{key}
    to: { topic: ${topic}, key: '{key}' }
`);
});

afterAll(async () => {
  await running.stop();
});

describe('partition: hash', () => {
  it('puts each key in the partition the Java client’s murmur2 partitioner chooses', async () => {
    const client = await connectClient(running.mqttPort, { clientId: 'keyed' });
    for (const key of Object.keys(JAVA_MURMUR2)) {
      await client.publishAsync(`keyed/${key}`, key, { qos: 1 });
    }
    const records = await readRecords(topic, Object.keys(JAVA_MURMUR2).length);
    for (const record of records) {
      const key = record.key?.toString() ?? '';
      const hash = JAVA_MURMUR2[key] ?? NaN;
      expect({ key, partition: record.partition }).toEqual({
        key,
        partition: (hash & 0x7fffffff) % PARTITIONS,
      });
    }
  });
});

import { describe, expect, it } from 'vitest';
import { connectClient, startBridge } from '../support/bridge.js';
import { createTopic, kafkaClient, readRecords, uniqueId } from '../support/kafka-helpers.js';

/*
 * Devices do not create Kafka topics: a rule whose `to.topic` is rendered from a device's topic
 * sends records for topics Kafka does not have to the dead-letter path (the test Kafka allows
 * auto-creation, as Kafka does by default), and kafka.createTopics creates the fixed topics of
 * the rules at start when asked to.
 */

async function topicPartitions(topics: string[]): Promise<Map<string, number>> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const found = topics.filter((topic) => existing.has(topic));
    if (found.length === 0) return new Map();
    const { topics: metadata } = await admin.fetchTopicMetadata({ topics: found });
    return new Map(metadata.map((topic) => [topic.name, topic.partitions.length]));
  } finally {
    await admin.disconnect();
  }
}

describe('Kafka topics', () => {
  it('a templated to.topic naming a missing topic dead-letters the publish and creates nothing', async () => {
    const dead = await createTopic('dead');
    const prefix = `dev-${uniqueId()}`;
    const running = await startBridge(`
deadLetter: { topic: ${dead} }
uplink:
  - name: per-device
    from: devices/{deviceId}/data
    to: { topic: "${prefix}.{deviceId}" }
`);
    try {
      const client = await connectClient(running.mqttPort, {
        protocolVersion: 5,
        clientId: 'creator',
      });
      const reasons: number[] = [];
      client.on('packetreceive', (packet) => {
        if (packet.cmd === 'puback') reasons.push(packet.reasonCode ?? 0);
      });
      await expect(client.publishAsync('devices/d1/data', 'x', { qos: 1 })).rejects.toThrow();
      expect(reasons).toEqual([0x83]);
      const [record] = await readRecords(dead, 1);
      expect(record?.headers['dead-letter-rule']).toBe('per-device');
      expect(record?.headers['dead-letter-error']).toBe(
        `Kafka topic "${prefix}.d1" does not exist`,
      );
      expect(await topicPartitions([`${prefix}.d1`])).toEqual(new Map());

      // a 3.1.1 device: acknowledged once dead-lettered (it cannot be told no)
      const v3 = await connectClient(running.mqttPort, { clientId: 'creator-v3' });
      await v3.publishAsync('devices/d2/data', 'y', { qos: 1 });
      await readRecords(dead, 2);
      expect(await topicPartitions([`${prefix}.d2`])).toEqual(new Map());
    } finally {
      await running.stop();
    }
  });

  it('kafka.createTopics creates the missing fixed topics of the rules at start', async () => {
    const target = `created-${uniqueId()}`;
    const dead = `created-dead-${uniqueId()}`;
    const running = await startBridge(
      `
deadLetter: { topic: ${dead} }
uplink:
  - name: fixed
    from: fixed/{deviceId}
    to: { topic: ${target}, key: "{deviceId}" }
`,
      { kafka: { createTopics: true, createTopicsPartitions: 3 } },
    );
    try {
      expect(await topicPartitions([target, dead])).toEqual(
        new Map([
          [target, 3],
          [dead, 3],
        ]),
      );
      const client = await connectClient(running.mqttPort, { clientId: 'fixed-1' });
      await client.publishAsync('fixed/d1', 'hello', { qos: 1 });
      const [record] = await readRecords(target, 1);
      expect(record?.value?.toString()).toBe('hello');
    } finally {
      await running.stop();
    }
  });
});

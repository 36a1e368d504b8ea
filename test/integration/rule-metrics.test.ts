import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { connectedProducer, createTopic, readRecords } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

/* Per-rule counters: which rule a message took, and where it failed. */

let running: RunningBridge;
let producer: Producer;
const topics: Record<string, string> = {};

beforeAll(async () => {
  for (const name of ['readings', 'raw', 'dead', 'commands'])
    topics[name] = await createTopic(name);
  running = await startBridge(`
deadLetter: { topic: ${topics.dead} }
uplink:
  - name: readings
    from: readings/{deviceId}
    to: { topic: ${topics.readings}, key: "{deviceId}" }
    value: { format: json }
  - name: raw
    from: raw/#
    to: { topic: ${topics.raw} }
downlink:
  - name: commands
    from: ${topics.commands}
    to: { topic: 'devices/{key}/commands', qos: 1 }
  - name: json-commands
    from: ${topics.commands}
    to: { topic: 'devices/{value.device}/json' }
    value: { format: json }
`);
  producer = await connectedProducer();
});

afterAll(async () => {
  await producer.disconnect();
  await running.stop();
});

const ruleCount = (metric: string, rule: string, outcome: string): Promise<number> =>
  running.metric(`${metric}{rule="${rule}",outcome="${outcome}"}`);

describe('per-rule metrics', () => {
  it('counts each uplink rule’s records: produced, and dead-lettered for the rule that failed', async () => {
    const client = await connectClient(running.mqttPort, { protocolVersion: 5 });
    for (let i = 0; i < 3; i++) {
      await client.publishAsync('readings/d1', JSON.stringify({ t: i }), { qos: 1 });
    }
    await client.publishAsync('raw/a/b', 'anything', { qos: 1 });
    // dead-lettered, and the client still learns why
    await expect(client.publishAsync('readings/d2', 'not json', { qos: 1 })).rejects.toThrow(
      'Payload format invalid',
    );
    await readRecords(topics.dead ?? '', 1);

    await waitFor(
      async () =>
        (await ruleCount('bridge_uplink_rule_records_total', 'readings', 'dead_lettered')) === 1,
    );
    expect(await ruleCount('bridge_uplink_rule_records_total', 'readings', 'produced')).toBe(3);
    expect(await ruleCount('bridge_uplink_rule_records_total', 'raw', 'produced')).toBe(1);
    expect(await ruleCount('bridge_uplink_rule_records_total', 'raw', 'dead_lettered')).toBe(0);
    expect(await ruleCount('bridge_uplink_rule_records_total', 'readings', 'refused')).toBe(0);
  });

  it('counts each downlink rule’s messages: delivered, without a session, dead-lettered', async () => {
    const device = await connectClient(running.mqttPort, { clientId: 'd7', protocolVersion: 5 });
    const received = collect(device);
    await device.subscribeAsync('devices/d7/commands', { qos: 1 });
    await producer.send({
      topic: topics.commands ?? '',
      messages: [
        // both rules map it; only the first has a subscriber
        { key: 'd7', value: JSON.stringify({ device: 'nobody' }) },
        // the JSON rule cannot read it: dead-lettered
        { key: 'd7', value: 'plain text' },
      ],
    });

    await waitFor(() => received.length === 2);
    await waitFor(
      async () =>
        (await ruleCount(
          'bridge_downlink_rule_messages_total',
          'json-commands',
          'dead_lettered',
        )) === 1,
    );
    expect(await ruleCount('bridge_downlink_rule_messages_total', 'commands', 'delivered')).toBe(2);
    expect(
      await ruleCount('bridge_downlink_rule_messages_total', 'json-commands', 'without_session'),
    ).toBe(1);
    expect(
      await ruleCount('bridge_downlink_rule_messages_total', 'commands', 'dead_lettered'),
    ).toBe(0);
  });
});

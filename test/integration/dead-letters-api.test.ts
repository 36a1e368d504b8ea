import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { connectedProducer, createTopic, readRecords } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

/* "Why was this message dead-lettered?" answered by the admin API, without reading Kafka. */

const TOKEN = 'dead-letters-token';
let running: RunningBridge;
let producer: Producer;
const topics: Record<string, string> = {};

interface DeadLetters {
  items: Array<{
    direction: string;
    failures: Array<{ rule: string; error: string }>;
    mqttTopic?: string;
    clientId?: string;
    source?: string;
    deadLetterTopic?: string;
  }>;
}

beforeAll(async () => {
  for (const name of ['readings', 'commands', 'dead'])
    topics[name] = await createTopic(`dl-api-${name}`);
  running = await startBridge(
    `
deadLetter: { topic: ${topics.dead} }
uplink:
  - name: readings
    from: readings/{deviceId}
    to: { topic: ${topics.readings} }
    value: { format: json }
downlink:
  - name: json-commands
    from: ${topics.commands}
    to: { topic: 'devices/{value.device}/commands' }
    value: { format: json }
`,
    { admin: { token: TOKEN } },
  );
  producer = await connectedProducer();
});

afterAll(async () => {
  await producer.disconnect();
  await running.stop();
});

async function deadLetters(): Promise<DeadLetters> {
  const response = await fetch(`${running.httpUrl}/api/dead-letters`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as DeadLetters;
}

describe('GET /api/dead-letters', () => {
  it('lists the last dead letters of both directions, newest first, with the rule and the reason', async () => {
    const device = await connectClient(running.mqttPort, { clientId: 'd2', protocolVersion: 5 });
    await expect(device.publishAsync('readings/d2', 'not json', { qos: 1 })).rejects.toThrow(
      'Payload format invalid',
    );
    await readRecords(topics.dead ?? '', 1);
    await producer.send({ topic: topics.commands ?? '', messages: [{ value: 'plain text' }] });

    const answer = await waitFor(async () => {
      const { items } = await deadLetters();
      return items.length === 2 ? items : undefined;
    });
    const [downlink, uplink] = answer;
    expect(downlink).toMatchObject({
      direction: 'downlink',
      failures: [{ rule: 'json-commands' }],
      source: `${topics.commands}/0/0`,
      deadLetterTopic: topics.dead,
    });
    expect(uplink).toMatchObject({
      direction: 'uplink',
      failures: [{ rule: 'readings' }],
      mqttTopic: 'readings/d2',
      clientId: 'd2',
      deadLetterTopic: topics.dead,
    });
    expect(uplink?.failures[0]?.error).toMatch(/json/i);
  });

  it('needs the token', async () => {
    const response = await fetch(`${running.httpUrl}/api/dead-letters`);
    expect(response.status).toBe(401);
  });
});

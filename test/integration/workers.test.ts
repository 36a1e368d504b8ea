/**
 * `start --workers N` (issue 13): N bridge processes share the MQTT listener, each an instance
 * of the fleet with its sessions in Kafka, so clients spread over them and still see each
 * other's messages; SIGTERM to the supervisor stops them all gracefully.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { BridgeProcess, stopAllBridgeProcesses } from '../support/bridge-process.js';
import { connectClient } from '../support/bridge.js';
import { kafkaBrokers, uniqueId } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

afterAll(async () => {
  await stopAllBridgeProcesses();
});

describe('start --workers', () => {
  it('spreads clients over two worker processes that deliver to each other; SIGTERM stops both', async () => {
    const id = uniqueId();
    const bridge = await BridgeProcess.start({
      brokers: kafkaBrokers().join(','),
      mappings: 'uplink: []\n',
      args: ['--workers', '2'],
      env: {
        BRIDGE_SESSIONS_STORE: 'kafka',
        BRIDGE_SESSIONS_TOPIC: `workers-sessions-${id}`,
        BRIDGE_SESSIONS_MESSAGES_TOPIC: `workers-messages-${id}`,
        BRIDGE_SESSIONS_PARTITIONS: '3',
        BRIDGE_INSTANCE_ID: `workers-${id}`,
        BRIDGE_AUTH_ALLOW_ANONYMOUS: 'true',
      },
    });
    // both workers listen (on the one shared MQTT port), each with its HTTP server
    const listening = await waitFor(
      () => {
        const lines = bridge.logLines().filter((line) => line.msg === 'bridge listening');
        return lines.length >= 2 ? lines : undefined;
      },
      { what: 'two workers listening' },
    );
    const httpPorts = listening.map((line) => (line as { http?: { port: number } }).http?.port);
    const mqttPorts = new Set(
      listening.map((line) => (line as { mqtt?: { port: number } }).mqtt?.port),
    );
    expect(mqttPorts.size).toBe(1);

    const topic = `workers/${id}`;
    const clients: MqttClient[] = [];
    const received = new Map<string, string[]>();
    for (let index = 0; index < 8; index++) {
      const clientId = `w-${index}-${id}`;
      const client = await connectClient(bridge.mqttPort, { clientId, protocolVersion: 5 });
      received.set(clientId, []);
      client.on('message', (_topic, payload) => received.get(clientId)?.push(payload.toString()));
      await client.subscribeAsync(`${topic}/#`, { qos: 1 });
      clients.push(client);
    }
    const connections = await Promise.all(
      httpPorts.map(async (port) => {
        const text = await (await fetch(`http://127.0.0.1:${port ?? 0}/metrics`)).text();
        const line = text.split('\n').find((row) => row.startsWith('bridge_mqtt_connections '));
        return Number(line?.split(' ').at(-1));
      }),
    );
    // the shared listener handed connections to both workers
    expect(connections.every((count) => count > 0)).toBe(true);
    expect(connections.reduce((sum, count) => sum + count, 0)).toBe(8);

    // every client hears every other: across workers through Kafka
    await waitFor(
      async () => {
        await clients[0]?.publishAsync(`${topic}/probe`, 'probe', { qos: 0 });
        return [...received.values()].every((list) => list.includes('probe'));
      },
      { what: 'both workers knowing every subscription', intervalMs: 200 },
    );
    for (const [index, client] of clients.entries()) {
      await client.publishAsync(`${topic}/x`, `from-${index}`, { qos: 1 });
    }
    await waitFor(() =>
      [...received.values()].every(
        (list) => list.filter((v) => v.startsWith('from-')).length === 8,
      ),
    );
    for (const client of clients) await client.endAsync();

    bridge.signal('SIGTERM');
    expect((await bridge.exited).code).toBe(0);
    expect(bridge.logLines().filter((line) => line.msg === 'stopped')).toHaveLength(2);
  });
});

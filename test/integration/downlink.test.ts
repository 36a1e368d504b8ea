import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  collect,
  connectClient,
  startBridge,
  type Received,
  type RunningBridge,
} from '../support/bridge.js';
import { connectedProducer, createTopic, readRecords } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

let running: RunningBridge;
let producer: Producer;
const topics: Record<string, string> = {};

beforeAll(async () => {
  for (const name of ['commands', 'expiring', 'config', 'replies', 'requests', 'json', 'dead']) {
    topics[name] = await createTopic(`dl-${name}`, name === 'commands' ? 4 : 1);
  }
  running = await startBridge(`
deadLetter: { topic: ${topics.dead} }
uplink:
  - name: requests
    from: requests/#
    to:
      topic: ${topics.requests}
      mqttHeaders: [topic, clientId, responseTopic, correlationData]
downlink:
  - name: commands
    from: ${topics.commands}
    to: { topic: 'devices/{key}/commands', qos: 2 }
  - name: expiring
    from: ${topics.expiring}
    to: { topic: 'devices/{key}/commands', qos: 1, expiry: { ttl: header.ttl } }
  - name: config
    from: ${topics.config}
    to: { topic: 'devices/{key}/config', qos: 1, retain: true }
  - name: replies
    from: ${topics.replies}
    to:
      topic: '{header.mqtt-response-topic}'
      qos: 1
      correlationData: header.mqtt-correlation-data
  - name: json
    from: ${topics.json}
    to: { topic: 'devices/{value.device}/json' }
    value: { format: json }
`);
  producer = await connectedProducer();
});

afterAll(async () => {
  await producer.disconnect();
  await running.stop();
});

async function send(
  topic: string | undefined,
  messages: Array<{ key?: string; value: string | null; headers?: Record<string, string> }>,
): Promise<void> {
  await producer.send({ topic: topic ?? '', messages });
}

describe('downlink: Kafka records to device sessions', () => {
  it('delivers commands to online devices at min(rule QoS, subscription QoS)', async () => {
    const devices = await Promise.all(
      ([0, 1, 2] as const).map(async (qos) => {
        const client = await connectClient(running.mqttPort, {
          clientId: `online-${qos}`,
          protocolVersion: 5,
        });
        const received = collect(client);
        await client.subscribeAsync(`devices/online-${qos}/commands`, { qos });
        return { qos, received };
      }),
    );
    await send(
      topics.commands,
      devices.map(({ qos }) => ({ key: `online-${qos}`, value: `reboot ${qos}` })),
    );
    await waitFor(() => devices.every(({ received }) => received.length === 1));
    for (const { qos, received } of devices) {
      expect(received[0]?.payload).toBe(`reboot ${qos}`);
      expect(received[0]?.packet.qos).toBe(qos);
    }
  });

  it('queues commands for an offline persistent session and delivers them in order on reconnect', async () => {
    const options = { clientId: 'sleepy', protocolVersion: 5 as const, clean: false };
    const first = await connectClient(running.mqttPort, {
      ...options,
      properties: { sessionExpiryInterval: 300 },
    });
    await first.subscribeAsync('devices/sleepy/commands', { qos: 1 });
    await first.endAsync();
    await send(
      topics.commands,
      ['c1', 'c2', 'c3'].map((value) => ({ key: 'sleepy', value })),
    );
    // handed over to the session: the record is consumed before the device is back
    await waitFor(async () => (await running.metric('bridge_downlink_unsettled_records')) >= 3);
    let received: Received[] = [];
    await connectClient(
      running.mqttPort,
      { ...options, properties: { sessionExpiryInterval: 300 } },
      (again) => (received = collect(again)),
    );
    await waitFor(() => received.length === 3);
    expect(received.map((message) => message.payload)).toEqual(['c1', 'c2', 'c3']);
  });

  it('does not deliver expired commands, and counts records for devices without a session', async () => {
    const device = await connectClient(running.mqttPort, {
      clientId: 'expiry-device',
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    });
    await device.subscribeAsync('devices/expiry-device/commands', { qos: 1 });
    await device.endAsync();
    const before = await running.metric('bridge_downlink_messages_without_session_total');
    await send(topics.expiring, [
      { key: 'expiry-device', value: 'short', headers: { ttl: '1' } },
      { key: 'expiry-device', value: 'long', headers: { ttl: '600' } },
      { key: 'nobody-here', value: 'lost', headers: { ttl: '600' } },
    ]);
    await waitFor(
      async () =>
        (await running.metric('bridge_downlink_messages_without_session_total')) === before + 1,
    );
    // let the short one expire while the device is away
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    let received: Received[] = [];
    await connectClient(
      running.mqttPort,
      {
        clientId: 'expiry-device',
        protocolVersion: 5,
        clean: false,
        properties: { sessionExpiryInterval: 300 },
      },
      (back) => (received = collect(back)),
    );
    await waitFor(() => received.length === 1);
    expect(received[0]?.payload).toBe('long');
    expect(received[0]?.packet.properties?.messageExpiryInterval).toBeGreaterThan(500);
  });

  it('keeps the last config retained for later subscribers; a tombstone clears it', async () => {
    await send(topics.config, [
      { key: 'cfg-device', value: '{"rate":1}' },
      { key: 'cfg-device', value: '{"rate":5}' },
    ]);
    await waitFor(async () => {
      const late = await connectClient(running.mqttPort, { clientId: `cfg-${Date.now()}` });
      const received = collect(late);
      await late.subscribeAsync('devices/cfg-device/config', { qos: 1 });
      await late.publishAsync('sync/x', 'x', { qos: 1 }); // a round trip after SUBACK
      await late.endAsync();
      return (
        received.length === 1 && received[0]?.payload === '{"rate":5}' && received[0].packet.retain
      );
    });
    await send(topics.config, [{ key: 'cfg-device', value: null }]);
    await waitFor(async () => {
      const late = await connectClient(running.mqttPort, { clientId: `cfg-${Date.now()}` });
      const received = collect(late);
      await late.subscribeAsync('devices/cfg-device/config', { qos: 1 });
      await late.publishAsync('sync/x', 'x', { qos: 1 });
      await late.endAsync();
      return received.length === 0;
    });
  });

  it('answers an MQTT 5 request through Kafka: response topic and correlation data round trip', async () => {
    const device = await connectClient(running.mqttPort, {
      clientId: 'asker',
      protocolVersion: 5,
    });
    const received = collect(device);
    await device.subscribeAsync('responses/asker', { qos: 1 });
    await device.publishAsync('requests/status', 'how are you?', {
      qos: 1,
      properties: {
        responseTopic: 'responses/asker',
        correlationData: Buffer.from('req-42'),
      },
    });
    // the back end: reads the request from Kafka, replies with the same headers
    const [request] = await readRecords(topics.requests ?? '', 1, {
      match: (record) => record.headers['mqtt-client-id'] === 'asker',
    });
    expect(request?.headers['mqtt-response-topic']).toBe('responses/asker');
    await send(topics.replies, [
      {
        value: 'fine',
        headers: {
          'mqtt-response-topic': String(request?.headers['mqtt-response-topic']),
          'mqtt-correlation-data': String(request?.headers['mqtt-correlation-data']),
        },
      },
    ]);
    await waitFor(() => received.length === 1);
    expect(received[0]?.payload).toBe('fine');
    expect(received[0]?.packet.properties?.correlationData?.toString()).toBe('req-42');
  });

  it('dead-letters a record its rule cannot map and delivers the records behind it', async () => {
    const device = await connectClient(running.mqttPort, { clientId: 'json-device' });
    const received = collect(device);
    await device.subscribeAsync('devices/json-device/json', { qos: 1 });
    await send(topics.json, [
      { value: 'not json' },
      { value: JSON.stringify({ device: 'json-device', speed: 3 }) },
    ]);
    await waitFor(() => received.length === 1);
    expect(JSON.parse(received[0]?.payload ?? '')).toEqual({ device: 'json-device', speed: 3 });
    const [dead] = await readRecords(topics.dead ?? '', 1);
    expect(dead?.value?.toString()).toBe('not json');
    expect(dead?.headers['dead-letter-rule']).toBe('json');
    expect(String(dead?.headers['dead-letter-error'])).toMatch(/json/i);
  });
});

describe('downlink sources', () => {
  it('reads the topics a pattern matches, and with start: latest skips what was there before', async () => {
    const prefix = `dlpat${Date.now().toString(36)}`;
    const [old, fresh] = [await createTopic(`${prefix}.a`), await createTopic(`${prefix}.b`)];
    await send(old, [{ key: 'pat-device', value: 'before the bridge' }]);
    const patterned = await startBridge(`
downlink:
  - name: by-pattern
    from: { pattern: '${prefix}\\..*', start: latest }
    to: { topic: 'devices/{key}/{topic}' }
`);
    onTestFinished(() => patterned.stop());
    const device = await connectClient(patterned.mqttPort, { clientId: 'pat-device' });
    const received = collect(device);
    await device.subscribeAsync('devices/pat-device/#', { qos: 1 });
    // the group has joined once a record sent now arrives
    await waitFor(async () => {
      await send(fresh, [{ key: 'pat-device', value: 'probe' }]);
      return received.length > 0;
    });
    await send(old, [{ key: 'pat-device', value: 'after' }]);
    await waitFor(() => received.some((message) => message.payload === 'after'));
    expect(received.map((message) => message.payload)).not.toContain('before the bridge');
    expect(new Set(received.map((message) => message.topic))).toEqual(
      new Set([`devices/pat-device/${fresh}`, `devices/pat-device/${old}`]),
    );
  });
});

describe('downlink order and restarts', () => {
  it('delivers 10,000 commands to 100 devices, each device’s in Kafka order', async () => {
    const devices = 100;
    const perDevice = 100;
    const received = new Map<number, number[]>();
    await Promise.all(
      Array.from({ length: devices }, async (_, index) => {
        const numbers: number[] = [];
        received.set(index, numbers);
        const client = await connectClient(running.mqttPort, { clientId: `fleet-${index}` });
        client.on('message', (_topic, payload) => numbers.push(Number(payload.toString())));
        await client.subscribeAsync(`devices/fleet-${index}/commands`, { qos: 1 });
      }),
    );
    for (let sequence = 0; sequence < perDevice; sequence += 10) {
      const batch = [];
      for (let offset = sequence; offset < sequence + 10; offset++) {
        for (let device = 0; device < devices; device++) {
          batch.push({ key: `fleet-${device}`, value: String(offset) });
        }
      }
      await send(topics.commands, batch);
    }
    const expected = Array.from({ length: perDevice }, (_, index) => index);
    await waitFor(() => [...received.values()].every((numbers) => numbers.length >= perDevice), {
      timeoutMs: 60_000,
    });
    for (const numbers of received.values()) expect(numbers).toEqual(expected);
  });

  it('delivers every pending command after a bridge restart: queued in the old bridge, and written while none ran', async () => {
    const commandTopic = await createTopic('dl-restart', 2);
    const rules = `
downlink:
  - name: restart-commands
    from: ${commandTopic}
    to: { topic: 'devices/{key}/commands', qos: 1 }
`;
    const groupId = `restart-${commandTopic}`;
    const device = { clientId: 'restarted', protocolVersion: 5 as const, clean: false };
    const session = { sessionExpiryInterval: 300 };
    // offsets are committed only at stop here: c0, delivered and acknowledged, must be
    const first = await startBridge(rules, { downlink: { groupId, commitIntervalMs: 600_000 } });
    const before = await connectClient(first.mqttPort, { ...device, properties: session });
    const online: string[] = [];
    before.on('message', (_topic, payload) => online.push(payload.toString()));
    await before.subscribeAsync('devices/restarted/commands', { qos: 1 });
    await send(commandTopic, [{ key: 'restarted', value: 'c0' }]);
    await waitFor(() => online.length === 1);
    await before.endAsync();
    await send(
      commandTopic,
      ['c1', 'c2', 'c3'].map((value) => ({ key: 'restarted', value })),
    );
    // consumed and queued for the offline session, so not committed
    await waitFor(async () => (await first.metric('bridge_downlink_unsettled_records')) === 3);
    await first.stop();
    await send(
      commandTopic,
      ['c4', 'c5', 'c6'].map((value) => ({ key: 'restarted', value })),
    );

    // the new bridge waits for devices before consuming: the device reconnects and subscribes
    const second = await startBridge(rules, { downlink: { groupId, startDelayMs: 3_000 } });
    onTestFinished(() => second.stop());
    const received: string[] = [];
    const after = await connectClient(
      second.mqttPort,
      { ...device, properties: session },
      (client) => client.on('message', (_topic, payload) => received.push(payload.toString())),
    );
    await after.subscribeAsync('devices/restarted/commands', { qos: 1 });
    await waitFor(() => received.length >= 6);
    expect(received).toEqual(['c1', 'c2', 'c3', 'c4', 'c5', 'c6']);
  });
});

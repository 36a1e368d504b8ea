import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/scram-verifier.js';
import { collect, connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { connectedProducer, createTopic, readRecords } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

/*
 * Request/response under the ACL: a device chooses its request's Response Topic, and the back
 * end's reply goes there only if the requesting client may subscribe to it (or it is under the
 * client's Response Information, `responses/<client id>`); else the reply is dead-lettered with
 * the reason. Real Kafka, real MQTT.js clients, a users and ACL file.
 */

let running: RunningBridge;
let producer: Producer;
const topics: Record<string, string> = {};

beforeAll(async () => {
  for (const name of ['requests', 'replies', 'dead']) {
    topics[name] = await createTopic(`rt-acl-${name}`);
  }
  const folder = await mkdtemp(join(tmpdir(), 'bridge-response-acl-'));
  const file = join(folder, 'auth.yaml');
  const [dev1, dev2, monitor] = await Promise.all(
    ['dev1', 'dev2', 'monitor'].map((password) => hashPassword(password)),
  );
  await writeFile(
    file,
    `
users:
  dev1: { password: ${dev1} }
  dev2: { password: ${dev2} }
  monitor:
    password: ${monitor}
    acl:
      - allow: subscribe
        topics: ['responses/#']
clientIds: ['{username}']
acl:
  - allow: all
    topics: ['devices/{username}/#']
`,
  );
  // the rule of mappings/request-response.yaml, with the implicit replyFor
  running = await startBridge(
    `
deadLetter: { topic: ${topics.dead} }
uplink:
  - name: requests
    from: devices/{deviceId}/requests/{service}
    to:
      topic: ${topics.requests}
      mqttHeaders: [topic, clientId, responseTopic, correlationData]
downlink:
  - name: replies
    from: ${topics.replies}
    to:
      topic: '{header.mqtt-response-topic}'
      qos: 1
      correlationData: header.mqtt-correlation-data
`,
    { auth: { file } },
  );
  producer = await connectedProducer();
});

afterAll(async () => {
  await producer.disconnect();
  await running.stop();
});

const user = (name: string) => ({ clientId: name, username: name, password: name });

/** A reply record as a back end writes it: the request's headers copied onto it. */
async function reply(value: string, headers: Record<string, string>): Promise<void> {
  await producer.send({ topic: topics.replies ?? '', messages: [{ value, headers }] });
}

/** The dead letter of the reply whose value is `value`. */
async function deadLetterOf(value: string) {
  const [dead] = await readRecords(topics.dead ?? '', 1, {
    match: (record) => record.value?.toString() === value,
  });
  return dead;
}

describe('downlink replies under the ACL', () => {
  it('delivers a reply to a response topic the requesting client may subscribe to', async () => {
    const device = await connectClient(running.mqttPort, { ...user('dev1'), protocolVersion: 5 });
    const received = collect(device);
    await device.subscribeAsync('devices/dev1/responses', { qos: 1 });
    // the whole round trip: request through the uplink, reply with the request's headers
    await device.publishAsync('devices/dev1/requests/status', 'how are you?', {
      qos: 1,
      properties: { responseTopic: 'devices/dev1/responses', correlationData: Buffer.from('r1') },
    });
    const [request] = await readRecords(topics.requests ?? '', 1, {
      match: (record) => record.headers['mqtt-client-id'] === 'dev1',
    });
    await reply('fine', {
      'mqtt-response-topic': String(request?.headers['mqtt-response-topic']),
      'mqtt-correlation-data': String(request?.headers['mqtt-correlation-data']),
      'mqtt-client-id': String(request?.headers['mqtt-client-id']),
    });
    await waitFor(() => received.length === 1);
    expect(received[0]?.topic).toBe('devices/dev1/responses');
    expect(received[0]?.payload).toBe('fine');
    expect(received[0]?.packet.properties?.correlationData?.toString()).toBe('r1');
  });

  it("dead-letters a reply to another device's topic, and does not deliver it", async () => {
    const victim = await connectClient(running.mqttPort, { ...user('dev2'), protocolVersion: 5 });
    const victimReceived = collect(victim);
    await victim.subscribeAsync('devices/dev2/cmd', { qos: 1 });
    const attacker = await connectClient(running.mqttPort, {
      ...user('dev1'),
      protocolVersion: 5,
    });
    // dev1 asks for the reply on dev2's command topic
    await attacker.publishAsync('devices/dev1/requests/reboot', 'please', {
      qos: 1,
      properties: { responseTopic: 'devices/dev2/cmd' },
    });
    const [request] = await readRecords(topics.requests ?? '', 1, {
      match: (record) => record.headers['mqtt-response-topic'] === 'devices/dev2/cmd',
    });
    expect(request?.headers['mqtt-client-id']).toBe('dev1');
    await reply('reboot now', {
      'mqtt-response-topic': 'devices/dev2/cmd',
      'mqtt-client-id': 'dev1',
    });
    const dead = await deadLetterOf('reboot now');
    expect(dead?.headers['dead-letter-rule']).toBe('replies');
    expect(dead?.headers['dead-letter-error']).toBe(
      'response topic "devices/dev2/cmd" is not one client "dev1" may subscribe to',
    );
    expect(dead?.headers['dead-letter-source']).toMatch(new RegExp(`^${topics.replies}/0/\\d+$`));
    // a reply dev2 may get, after the refused one: delivered, and the refused one never was
    await reply('for dev2', {
      'mqtt-response-topic': 'devices/dev2/cmd',
      'mqtt-client-id': 'dev2',
    });
    await waitFor(() => victimReceived.length === 1);
    expect(victimReceived.map((message) => message.payload)).toEqual(['for dev2']);
  });

  it("delivers a reply under the requester's Response Information", async () => {
    let responseInformation: string | undefined;
    await connectClient(
      running.mqttPort,
      { ...user('dev1'), protocolVersion: 5, properties: { requestResponseInformation: true } },
      (device) =>
        device.once('connect', (connack) => {
          responseInformation = connack.properties?.responseInformation;
        }),
    );
    expect(responseInformation).toBe('responses/dev1');
    // the ACL does not let dev1 subscribe there; another client that may receives it
    const monitor = await connectClient(running.mqttPort, { ...user('monitor') });
    const received = collect(monitor);
    await monitor.subscribeAsync('responses/#', { qos: 1 });
    await reply('under the prefix', {
      'mqtt-response-topic': 'responses/dev1/x',
      'mqtt-client-id': 'dev1',
    });
    await reply('the prefix itself', {
      'mqtt-response-topic': 'responses/dev1',
      'mqtt-client-id': 'dev1',
    });
    // only the prefix or below it: responses/dev1x is another client's
    await reply('beside the prefix', {
      'mqtt-response-topic': 'responses/dev1x',
      'mqtt-client-id': 'dev1',
    });
    await waitFor(() => received.length === 2);
    expect(received.map(({ topic, payload }) => [topic, payload])).toEqual([
      ['responses/dev1/x', 'under the prefix'],
      ['responses/dev1', 'the prefix itself'],
    ]);
    expect((await deadLetterOf('beside the prefix'))?.headers['dead-letter-error']).toBe(
      'response topic "responses/dev1x" is not one client "dev1" may subscribe to',
    );
  });

  it('dead-letters a reply whose requester is unknown, or not named', async () => {
    await reply('for nobody', {
      'mqtt-response-topic': 'devices/dev9/responses',
      'mqtt-client-id': 'dev9',
    });
    await reply('anonymous reply', { 'mqtt-response-topic': 'devices/dev1/responses' });
    expect((await deadLetterOf('for nobody'))?.headers['dead-letter-error']).toBe(
      'requesting client "dev9" is unknown (not connected, no session kept)',
    );
    expect((await deadLetterOf('anonymous reply'))?.headers['dead-letter-error']).toBe(
      'no requesting client id (header "mqtt-client-id" is missing)',
    );
  });

  it("judges a kept session's rights while its client is offline", async () => {
    const options = {
      ...user('dev2'),
      protocolVersion: 5 as const,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    };
    const first = await connectClient(running.mqttPort, options);
    await first.subscribeAsync('devices/dev2/responses', { qos: 1 });
    await first.endAsync();
    await reply('while away', {
      'mqtt-response-topic': 'devices/dev2/responses',
      'mqtt-client-id': 'dev2',
    });
    await reply('not yours', { 'mqtt-response-topic': 'devices/dev1/x', 'mqtt-client-id': 'dev2' });
    expect((await deadLetterOf('not yours'))?.headers['dead-letter-error']).toBe(
      'response topic "devices/dev1/x" is not one client "dev2" may subscribe to',
    );
    let received: ReturnType<typeof collect> = [];
    await connectClient(running.mqttPort, options, (again) => (received = collect(again)));
    await waitFor(() => received.length === 1);
    expect(received[0]?.payload).toBe('while away');
  });
});

import mqttPacket, { type Packet } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { createTopic, readRecords } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

let topic: string;
let running: RunningBridge;

beforeAll(async () => {
  topic = await createTopic();
  running = await startBridge(`
uplink:
  - name: ws
    from: ws/{deviceId}/#
    to:
      topic: ${topic}
      key: "{deviceId}"
`);
});

afterAll(async () => {
  await running.stop();
});

function url(path = '/mqtt'): string {
  return `ws://127.0.0.1:${running.websocketPort}${path}`;
}

/** A raw WebSocket (the `ws` package), open; terminated when the test finishes. */
async function openSocket(protocols?: string[], path?: string): Promise<WebSocket> {
  const socket = new WebSocket(url(path), protocols);
  onTestFinished(() => {
    socket.terminate();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** The error of a handshake the bridge refuses, e.g. "Unexpected server response: 404". */
async function refusal(path: string, protocols?: string[]): Promise<string> {
  const socket = new WebSocket(url(path), protocols);
  return new Promise((resolve, reject) => {
    socket.once('open', () => {
      socket.terminate();
      reject(new Error('the handshake was accepted'));
    });
    socket.once('error', (error) => {
      resolve(error.message);
    });
  });
}

/** Resolves with the close code once the socket is closed. */
function closed(socket: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (socket.readyState === WebSocket.CLOSED) resolve(0);
    socket.once('close', (code) => {
      resolve(code);
    });
  });
}

/** The first MQTT packet the server sends on a raw socket. */
function firstPacket(socket: WebSocket): Promise<Packet> {
  const parser = mqttPacket.parser();
  return new Promise((resolve) => {
    parser.once('packet', resolve);
    socket.on('message', (data: Buffer) => parser.parse(data));
  });
}

describe.each([
  { version: 'MQTT 3.1.1', protocolVersion: 4 as const },
  { version: 'MQTT 5', protocolVersion: 5 as const },
])('MQTT over WebSocket from an $version client', ({ protocolVersion }) => {
  it('produces a QoS 1 publish to Kafka', async () => {
    const clientId = `ws-${protocolVersion}`;
    const client = await connectClient(running.websocketPort, {
      protocol: 'ws',
      path: '/mqtt',
      protocolVersion,
      clientId,
    });
    const payload = Buffer.from([0x00, 0xff, 0x10, protocolVersion]);
    await client.publishAsync(`ws/d${protocolVersion}/telemetry`, payload, { qos: 1 });

    const [record] = await readRecords(topic, 1, {
      match: (record) => record.key?.toString() === `d${protocolVersion}`,
    });
    expect(record?.value).toEqual(payload);
    expect(record?.headers['mqtt-client-id']).toBe(clientId);
  });
});

describe('the WebSocket listener', () => {
  it('negotiates the mqtt subprotocol (mqttv3.1 for old clients), and accepts none', async () => {
    expect((await openSocket(['foo', 'mqtt'])).protocol).toBe('mqtt');
    expect((await openSocket(['mqttv3.1'])).protocol).toBe('mqttv3.1');

    const bare = await openSocket();
    expect(bare.protocol).toBe('');
    const connack = firstPacket(bare);
    bare.send(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        clientId: 'ws-bare',
        keepalive: 30,
      }),
    );
    expect(await connack).toMatchObject({ cmd: 'connack', returnCode: 0 });
  });

  it('refuses other paths with 404', async () => {
    expect(await refusal('/other')).toMatch(/404/);
    expect(await refusal('/')).toMatch(/404/);
    expect(await refusal('/mqtt/x')).toMatch(/404/);
    expect((await fetch(`http://127.0.0.1:${running.websocketPort}/other`)).status).toBe(404);
  });

  it('refuses a client offering only unknown subprotocols', async () => {
    expect(await refusal('/mqtt', ['foo', 'bar'])).toMatch(/400/);
  });

  it('closes a WebSocket that sends garbage; other clients keep working', async () => {
    const client = await connectClient(running.websocketPort, {
      protocol: 'ws',
      path: '/mqtt',
      clientId: 'ws-survivor',
    });
    const garbage = await openSocket(['mqtt']);
    const garbageClosed = closed(garbage);
    garbage.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x13, 0x37]));
    await garbageClosed;

    // a text frame is not MQTT either [MQTT-6.0.0-1]
    const text = await openSocket(['mqtt']);
    const textClosed = closed(text);
    text.send('hello');
    await textClosed;

    expect(client.connected).toBe(true);
    await client.publishAsync('ws/survivor/telemetry', 'still here', { qos: 1 });
    const [record] = await readRecords(topic, 1, {
      match: (record) => record.key?.toString() === 'survivor',
    });
    expect(record?.value?.toString()).toBe('still here');
  });

  it('ends the MQTT connection when the WebSocket closes', async () => {
    const client = await connectClient(running.websocketPort, {
      protocol: 'ws',
      path: '/mqtt',
      clientId: 'ws-vanishing',
    });
    const connected = await running.metric('bridge_mqtt_connections');
    client.stream.destroy(); // no DISCONNECT, no close frame
    await waitFor(async () => (await running.metric('bridge_mqtt_connections')) === connected - 1, {
      what: 'the connection to end',
    });
  });
});

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type IConnackPacket } from 'mqtt';
import mqttPacket, { type IAuthPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { hashPassword } from '../../src/auth/scram-verifier.js';
import {
  connectClient,
  startBridge,
  type RunningBridge,
  connackOf as connackOfClient,
} from '../support/bridge.js';
import { createTopic, readRecords } from '../support/kafka-helpers.js';
import { RawClient } from '../support/raw-client.js';
import { ScramClient } from '../support/scram-client.js';
import { waitFor } from '../support/wait-for.js';

let running: RunningBridge;
let kafkaTopic: string;

beforeAll(async () => {
  kafkaTopic = await createTopic('auth');
  const folder = await mkdtemp(join(tmpdir(), 'bridge-auth-'));
  const file = join(folder, 'auth.yaml');
  await writeFile(
    file,
    `
users:
  sensor-1:
    password: ${await hashPassword('s3cret')}
  dashboard:
    password: ${await hashPassword('dash')}
    acl:
      - allow: subscribe
        topics: ['devices/+/telemetry']
acl:
  - allow: all
    topics: ['devices/{username}/#']
anonymous:
  acl:
    - allow: subscribe
      topics: ['public/#']
`,
  );
  running = await startBridge(
    `
uplink:
  - name: devices
    from: devices/#
    to: { topic: ${kafkaTopic} }
`,
    { auth: { file } },
  );
});

afterAll(async () => {
  await running.stop();
});

const sensor = { username: 'sensor-1', password: 's3cret' };

function connackOf(options: IClientOptions): Promise<number> {
  return connackOfClient(running.mqttPort, options);
}

describe('user name and password', () => {
  it('accepts the right password and refuses a wrong one or an unknown user (3.1.1 and 5)', async () => {
    expect(await connackOf({ clientId: 'pw-ok', ...sensor })).toBe(0);
    expect(await connackOf({ clientId: 'pw-ok5', protocolVersion: 5, ...sensor })).toBe(0);
    expect(await connackOf({ clientId: 'pw-bad', username: 'sensor-1', password: 'nope' })).toBe(4);
    expect(
      await connackOf({
        clientId: 'pw-bad5',
        protocolVersion: 5,
        username: 'sensor-1',
        password: 'nope',
      }),
    ).toBe(0x86);
    expect(await connackOf({ clientId: 'pw-who', username: 'nobody', password: 'x' })).toBe(4);
    expect(await running.metric('bridge_mqtt_authentication_failures_total')).toBeGreaterThan(2);
  });

  it('handles packets a client sends right after CONNECT, before CONNACK', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    raw.expectVersion(4);
    raw.send(
      Buffer.concat([
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: 'eager',
          clean: true,
          keepalive: 0,
          username: sensor.username,
          password: Buffer.from(sensor.password),
        }),
        mqttPacket.generate({
          cmd: 'publish',
          topic: 'devices/sensor-1/eager',
          payload: Buffer.from('early'),
          qos: 1,
          dup: false,
          retain: false,
          messageId: 1,
        }),
      ]),
    );
    expect((await raw.next('connack')).returnCode).toBe(0);
    expect((await raw.next('puback')).messageId).toBe(1);
    const [record] = await readRecords(kafkaTopic, 1, {
      match: (r) => r.value?.toString() === 'early',
    });
    expect(record?.key?.toString()).toBe('devices/sensor-1/eager');
  });
});

describe('ACLs', () => {
  it('lets a user publish to its own topics only: MQTT 5 gets PUBACK 0x87, 3.1.1 a silent drop', async () => {
    const watcher = await connectClient(running.mqttPort, {
      clientId: 'watcher',
      username: 'dashboard',
      password: 'dash',
    });
    const seen: string[] = [];
    watcher.on('message', (_topic, payload) => seen.push(payload.toString()));
    expect((await watcher.subscribeAsync('devices/+/telemetry', { qos: 1 }))[0]?.qos).toBe(1);

    const v5 = await RawClient.connect(running.mqttPort);
    await v5.handshake({ clientId: 'acl5', protocolVersion: 5, ...sensor });
    const publish = (topic: string, messageId: number, payload: string) => ({
      cmd: 'publish' as const,
      topic,
      payload: Buffer.from(payload),
      qos: 1 as const,
      dup: false,
      retain: false,
      messageId,
    });
    v5.send(publish('devices/other/telemetry', 1, 'forged'), 5);
    expect((await v5.next('puback')).reasonCode).toBe(0x87);

    const v3 = await connectClient(running.mqttPort, { clientId: 'acl3', ...sensor });
    await v3.publishAsync('devices/other/telemetry', 'forged too', { qos: 1 });
    await v3.publishAsync('devices/sensor-1/telemetry', 'genuine', { qos: 1 });
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual(['genuine']);
    expect(await running.metric('bridge_mqtt_publishes_denied_total')).toBeGreaterThanOrEqual(2);
  });

  it('refuses subscriptions outside the ACL: MQTT 5 0x87, 3.1.1 0x80; $share is judged on its filter', async () => {
    const v5 = await RawClient.connect(running.mqttPort);
    await v5.handshake({ clientId: 'sub5', protocolVersion: 5, ...sensor });
    expect(
      await grants(v5, 5, ['devices/sensor-1/cmd', 'devices/#', '$share/g/devices/sensor-1/+']),
    ).toEqual([1, 0x87, 1]);
    const v3 = await RawClient.connect(running.mqttPort);
    await v3.handshake({ clientId: 'sub3', protocolVersion: 4, ...sensor });
    expect(await grants(v3, 4, ['devices/other/#', 'devices/sensor-1/#'])).toEqual([0x80, 1]);
    expect(await running.metric('bridge_mqtt_subscriptions_denied_total')).toBeGreaterThan(1);
  });

  it('gives anonymous clients the anonymous rules only', async () => {
    const anonymous = await RawClient.connect(running.mqttPort);
    await anonymous.handshake({ clientId: 'anon', protocolVersion: 5 });
    expect(await grants(anonymous, 5, ['public/news', 'devices/+/telemetry'])).toEqual([1, 0x87]);
  });

  it('refuses a CONNECT whose will the client may not publish (as Mosquitto does)', async () => {
    expect(
      await connackOf({
        clientId: 'bad-will',
        protocolVersion: 5,
        ...sensor,
        will: { topic: 'devices/other/status', payload: Buffer.from('x'), qos: 0, retain: false },
      }),
    ).toBe(0x87);
  });
});

describe('SCRAM-SHA-256 enhanced authentication (MQTT 5)', () => {
  it('authenticates MQTT.js through CONNECT, AUTH, AUTH, CONNACK with the server signature', async () => {
    const scram = new ScramClient('sensor-1', 's3cret');
    const client = mqtt.connect({
      host: '127.0.0.1',
      port: running.mqttPort,
      clientId: 'scram-ok',
      protocolVersion: 5,
      reconnectPeriod: 0,
      manualConnect: true,
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.first() },
    });
    onTestFinished(async () => {
      await client.endAsync(true);
    });
    client.handleAuth = (packet: IAuthPacket, callback) => {
      const serverFirst = packet.properties?.authenticationData ?? Buffer.alloc(0);
      callback(undefined, authPacket(0x18, scram.final(serverFirst)));
    };
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
      client.connect();
    });
    expect(connack.properties?.authenticationData?.toString()).toBe(scram.serverFinal);
    // authorized as sensor-1: its own topics only
    expect((await client.subscribeAsync('devices/sensor-1/x', { qos: 0 }))[0]?.qos).toBe(0);
    await expect(client.subscribeAsync('devices/other/x', { qos: 0 })).rejects.toThrow(
      'Not authorized',
    );
  });

  it('refuses a wrong password with CONNACK 0x86 after the exchange', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    const scram = new ScramClient('sensor-1', 'wrong');
    raw.expectVersion(5);
    raw.send(
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clientId: 'scram-bad',
        clean: true,
        keepalive: 0,
        properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.first() },
      },
      5,
    );
    const challenge = await raw.next('auth');
    expect(challenge.reasonCode).toBe(0x18);
    raw.send(
      authPacket(0x18, scram.final(challenge.properties?.authenticationData ?? Buffer.alloc(0))),
      5,
    );
    expect((await raw.next('connack')).reasonCode).toBe(0x86);
    await raw.waitClosed();
  });

  it('re-authenticates on AUTH 0x19 while the connection keeps working', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    const scram = new ScramClient('sensor-1', 's3cret');
    raw.expectVersion(5);
    raw.send(
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clientId: 'scram-re',
        clean: true,
        keepalive: 0,
        properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.first() },
      },
      5,
    );
    const challenge = await raw.next('auth');
    raw.send(
      authPacket(0x18, scram.final(challenge.properties?.authenticationData ?? Buffer.alloc(0))),
      5,
    );
    expect((await raw.next('connack')).reasonCode).toBe(0);

    const again = new ScramClient('sensor-1', 's3cret', 'another-client-nonce');
    raw.send(authPacket(0x19, again.first()), 5);
    const second = await raw.next('auth');
    expect(second.reasonCode).toBe(0x18);
    // other packets flow during re-authentication
    raw.send({ cmd: 'pingreq' }, 5);
    await raw.next('pingresp');
    raw.send(
      authPacket(0x18, again.final(second.properties?.authenticationData ?? Buffer.alloc(0))),
      5,
    );
    const done = await raw.next('auth');
    expect(done.reasonCode).toBe(0);
    expect(done.properties?.authenticationData?.toString()).toBe(again.serverFinal);
  });

  it('refuses an unknown method with 0x8C and AUTH without a method with 0x82', async () => {
    expect(
      await connackOf({
        clientId: 'kerberos',
        protocolVersion: 5,
        properties: { authenticationMethod: 'GS2-KRB5' },
      }),
    ).toBe(0x8c);
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'stray-auth', protocolVersion: 5, ...sensor });
    raw.send(authPacket(0x19, Buffer.from('n,,n=sensor-1,r=abc')), 5);
    expect((await raw.next('disconnect')).reasonCode).toBe(0x82);
  });
});

describe('redirection', () => {
  it('sends MQTT 5 clients elsewhere with 0x9D and a Server Reference; 3.1.1 gets 0x03', async () => {
    const moved = await startBridge('uplink: []\n', {
      mqtt: { redirect: 'server-moved', serverReference: 'mqtt.example.com:1883' },
    });
    try {
      const raw = await RawClient.connect(moved.mqttPort);
      const connack = await raw.handshake({ clientId: 'go-away', protocolVersion: 5 });
      expect(connack.reasonCode).toBe(0x9d);
      expect(connack.properties?.serverReference).toBe('mqtt.example.com:1883');
      const old = await RawClient.connect(moved.mqttPort);
      expect((await old.handshake({ clientId: 'go-away-3', protocolVersion: 4 })).returnCode).toBe(
        3,
      );
    } finally {
      await moved.stop();
    }
  });
});

/** SUBSCRIBE at QoS 1 to each filter; the SUBACK's codes. */
async function grants(raw: RawClient, version: 4 | 5, topics: string[]): Promise<number[]> {
  raw.send(
    { cmd: 'subscribe', messageId: 1, subscriptions: topics.map((topic) => ({ topic, qos: 1 })) },
    version,
  );
  return (await raw.next('suback')).granted as number[];
}

function authPacket(reasonCode: number, data: Buffer): IAuthPacket {
  return {
    cmd: 'auth',
    reasonCode,
    properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: data },
  };
}

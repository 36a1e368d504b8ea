import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { hashPassword } from '../../src/auth/scram-verifier.js';
import {
  collect,
  connackOf,
  connectClient,
  startBridge,
  type Received,
  type RunningBridge,
} from '../support/bridge.js';
import { createTopic, highWatermarks, readRecords, uniqueId } from '../support/kafka-helpers.js';
import { RawClient } from '../support/raw-client.js';
import { waitFor } from '../support/wait-for.js';

/*
 * $SYS/ statistics (sys.interval 1 s) against a real bridge with MQTT.js clients: what they say,
 * who may read them, that `#` does not match them, that clients cannot publish there, and that
 * none of them reaches Kafka (uplink, unmatched forwarding or the retained log).
 */

const { version } = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string };

let running: RunningBridge;

beforeAll(async () => {
  const folder = await mkdtemp(join(tmpdir(), 'bridge-sys-'));
  const file = join(folder, 'auth.yaml');
  const [watcher, writer, device] = await Promise.all(
    ['watcher', 'writer', 'device'].map((password) => hashPassword(password)),
  );
  await writeFile(
    file,
    `
users:
  watcher:
    password: ${watcher}
    acl:
      - allow: subscribe
        topics: ['$SYS/#']
  writer: # may publish to $SYS/ as far as its ACL goes: the bridge still refuses it
    password: ${writer}
    acl:
      - allow: all
        topics: ['$SYS/#']
  device:
    password: ${device}
acl:
  - allow: all
    topics: ['#']
`,
  );
  running = await startBridge('uplink: []\n', { auth: { file }, sys: { interval: 1 } });
});

afterAll(async () => {
  await running.stop();
});

const user = (name: string) => ({ username: name, password: name });

/** A client subscribed to `$SYS/#` (by default the user watcher, who may), and what it receives. */
async function watch(port = running.mqttPort, credentials: IClientOptions = user('watcher')) {
  const client = await connectClient(port, {
    protocolVersion: 5,
    clientId: `sys-watcher-${uniqueId()}`,
    ...credentials,
  });
  const received = collect(client);
  const [granted] = await client.subscribeAsync('$SYS/#', { qos: 0 });
  expect(granted?.qos).toBe(0);
  return { client, received };
}

/** The last payload received on `topic`. */
function last(received: Received[], topic: string): string | undefined {
  return received.findLast((message) => message.topic === topic)?.payload;
}

/** The last value of `topic` as a number, once one was received. */
function valueOf(received: Received[], topic: string): Promise<number> {
  return waitFor(
    () => {
      const payload = last(received, topic);
      return payload === undefined ? undefined : Number(payload);
    },
    { what: topic },
  );
}

/** Waits until `received` got `updates` more uptimes: that many rounds of $SYS/ went out since. */
async function rounds(received: Received[], updates = 2): Promise<void> {
  const uptimes = () => received.filter(({ topic }) => topic === '$SYS/broker/uptime').length;
  const before = uptimes();
  await waitFor(() => uptimes() >= before + updates, { what: `${updates} $SYS rounds` });
}

describe('$SYS/ statistics', () => {
  it('publishes the version and the uptime, and clients/connected follows connections', async () => {
    const { received } = await watch();
    await waitFor(() => last(received, '$SYS/broker/version'), { what: 'the version' });
    expect(last(received, '$SYS/broker/version')).toBe(`mqtt-kafka-bridge version ${version}`);
    const uptime = await waitFor(() => last(received, '$SYS/broker/uptime'));
    expect(uptime).toMatch(/^\d+ seconds$/);
    // the uptime goes up with the rounds
    await rounds(received);
    const later = last(received, '$SYS/broker/uptime') ?? '';
    expect(Number.parseInt(later, 10)).toBeGreaterThan(Number.parseInt(uptime, 10));

    const connected = await valueOf(received, '$SYS/broker/clients/connected');
    expect(connected).toBeGreaterThanOrEqual(1);
    const other = await connectClient(running.mqttPort, { clientId: 'device', ...user('device') });
    await waitFor(() => last(received, '$SYS/broker/clients/connected') === String(connected + 1), {
      what: 'clients/connected to count the new client',
    });
    expect(Number(last(received, '$SYS/broker/clients/total'))).toBeGreaterThanOrEqual(
      connected + 1,
    );
    await other.endAsync();
    await waitFor(() => last(received, '$SYS/broker/clients/connected') === String(connected), {
      what: 'clients/connected to drop the client gone',
    });
  });

  it('counts messages, publishes and bytes received', async () => {
    const { received } = await watch();
    const packets = await valueOf(received, '$SYS/broker/messages/received');
    const publishes = await valueOf(received, '$SYS/broker/publish/messages/received');
    const bytes = await valueOf(received, '$SYS/broker/bytes/received');
    const device = await connectClient(running.mqttPort, {
      clientId: 'device',
      protocolVersion: 5,
      ...user('device'),
    });
    const payload = 'x'.repeat(1_000);
    for (let i = 0; i < 5; i++) await device.publishAsync(`data/${i}`, payload, { qos: 1 });
    await waitFor(
      () =>
        Number(last(received, '$SYS/broker/publish/messages/received')) >= publishes + 5 &&
        Number(last(received, '$SYS/broker/messages/received')) >= packets + 5 &&
        Number(last(received, '$SYS/broker/bytes/received')) >= bytes + 5_000,
      { what: 'the counts of what the device sent' },
    );
    // the bridge answered: PUBACKs and the $SYS/ messages themselves are counted as sent
    expect(Number(last(received, '$SYS/broker/messages/sent'))).toBeGreaterThan(0);
    expect(Number(last(received, '$SYS/broker/publish/messages/sent'))).toBeGreaterThan(0);
    const load = await waitFor(() => last(received, '$SYS/broker/load/publish/received/1min'));
    expect(load).toMatch(/^\d+\.\d\d$/);
  });

  it('keeps every value retained: a late subscriber gets them at once', async () => {
    const { received: first } = await watch();
    await rounds(first);
    const late = await connectClient(running.mqttPort, {
      protocolVersion: 5,
      clientId: `watcher-${uniqueId()}`,
      ...user('watcher'),
    });
    const received = collect(late);
    await late.subscribeAsync(['$SYS/broker/version', '$SYS/broker/clients/+'], { qos: 1 });
    // the version is published once, at start: what comes now is the retained copy
    const retainedVersion = await waitFor(() =>
      received.find((message) => message.topic === '$SYS/broker/version'),
    );
    expect(retainedVersion.packet.retain).toBe(true);
    expect(retainedVersion.payload).toBe(`mqtt-kafka-bridge version ${version}`);
    await waitFor(() =>
      ['connected', 'disconnected', 'total', 'maximum'].every((name) =>
        received.some(
          (message) => message.topic === `$SYS/broker/clients/${name}` && message.packet.retain,
        ),
      ),
    );
  });

  it('is not matched by filters starting with a wildcard [MQTT-4.7.2-1]', async () => {
    const { received: watcher } = await watch();
    const device = await connectClient(running.mqttPort, {
      clientId: 'device',
      ...user('device'),
    });
    const received = collect(device);
    const granted = await device.subscribeAsync(['#', '+/broker/#', '+/+/uptime'], { qos: 0 });
    expect(granted.map(({ qos }) => qos)).toEqual([0, 0, 0]);
    await rounds(watcher);
    await device.publishAsync('probe/sys', 'here', { qos: 1 });
    await waitFor(() => received.some(({ topic }) => topic === 'probe/sys'));
    expect(received.filter(({ topic }) => topic.startsWith('$'))).toEqual([]);
  });

  it('goes to nobody the ACL does not let read it', async () => {
    const { received: watcher } = await watch();
    const raw = await RawClient.connect(running.mqttPort);
    await raw.handshake({ clientId: 'device', protocolVersion: 5, ...user('device') });
    // `allow: all` on `#` does not cover $SYS/: refused, not filtered
    expect((await raw.subscribe('$SYS/#', 0)).granted).toEqual([0x87]);
    expect((await raw.subscribe('$SYS/broker/uptime', 0)).granted).toEqual([0x87]);
    await rounds(watcher);
    expect(raw.packets.filter((packet) => packet.cmd === 'publish')).toEqual([]);
  });

  it('cannot be published to by clients, whatever their ACL says', async () => {
    const { received } = await watch();
    const writer = await connectClient(running.mqttPort, {
      protocolVersion: 5,
      clientId: 'writer',
      ...user('writer'),
    });
    for (const topic of ['$SYS/x', '$SYS/broker/version', '$delay/1/$SYS/x']) {
      await expect(
        writer.publishAsync(topic, 'forged', { qos: 1, retain: true }),
      ).rejects.toMatchObject({ code: 0x87 });
    }
    await writer.publishAsync('$SYS/x', 'forged', { qos: 0 });
    // MQTT 3.1.1 cannot be told: acknowledged, and dropped
    const v3 = await connectClient(running.mqttPort, { clientId: 'writer', ...user('writer') });
    await v3.publishAsync('$SYS/x', 'forged', { qos: 1 });
    // a will to $SYS/ refuses the connection, as one outside the ACL does
    expect(
      await connackOf(running.mqttPort, {
        protocolVersion: 5,
        clientId: 'writer',
        ...user('writer'),
        will: { topic: '$SYS/x', payload: Buffer.from('forged'), qos: 0, retain: false },
      }),
    ).toBe(0x87);
    await rounds(received, 3); // past the $delay/1/ one's time too
    expect(received.filter(({ payload }) => payload === 'forged')).toEqual([]);
    expect(last(received, '$SYS/broker/version')).toBe(`mqtt-kafka-bridge version ${version}`);
  });
});

describe('$SYS/ and Kafka', () => {
  it('sends none of them to Kafka (not through a catch-all rule, unmatched forwarding or the retained log), nor counts them against the retained limits', async () => {
    const records = await createTopic();
    const retained = `retained-${uniqueId()}`;
    const bridge = await startBridge(
      `
unmatched: { action: forward, topic: ${records} }
uplink:
  - name: everything
    from: '#'
    to: { topic: ${records} }
`,
      // room for one retained message: the $SYS/ ones are kept apart, outside the limit
      { sys: { interval: 1 }, retained: { topic: retained, maxMessages: 1 } },
    );
    onTestFinished(() => bridge.stop());
    // no auth file: loopback clients may do anything, $SYS/ still excepted
    const { received } = await watch(bridge.mqttPort, {});
    const client = await connectClient(bridge.mqttPort, { protocolVersion: 5 });
    await client.publishAsync('plain/first', 'one', { qos: 1 });
    await expect(
      client.publishAsync('$SYS/broker/uptime', 'forged', { qos: 1, retain: true }),
    ).rejects.toMatchObject({ code: 0x87 });
    await rounds(received, 3);
    // the last of them is acknowledged once Kafka has it, and its retained state is kept
    await client.publishAsync('plain/last', 'two', { qos: 1, retain: true });

    const produced = (await highWatermarks(records)).reduce((sum, offset) => sum + offset, 0);
    expect(produced).toBe(2);
    const topics = (await readRecords(records, produced)).map(
      (record) => record.headers['mqtt-topic'],
    );
    expect(topics.sort()).toEqual(['plain/first', 'plain/last']);
    const kept = (await highWatermarks(retained)).reduce((sum, offset) => sum + offset, 0);
    expect(kept).toBe(1);
    const [record] = await readRecords(retained, 1);
    expect(record?.key?.toString()).toBe('plain/last');
    expect(await bridge.metric('bridge_mqtt_retained_messages')).toBe(1);
    expect(await bridge.metric('bridge_mqtt_retained_refused_total')).toBe(0);
  });
});

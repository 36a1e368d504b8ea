import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/scram-verifier.js';
import {
  collect,
  connectClient,
  startBridge,
  type RunningBridge,
  connackOf as connackOfClient,
} from '../support/bridge.js';
import { RawClient } from '../support/raw-client.js';
import { waitFor } from '../support/wait-for.js';

/*
 * Deny rules (first match wins), client ids bound to identities, sessions owned by their user,
 * and share groups under the ACL, against a real bridge with MQTT.js and raw packets.
 */

let running: RunningBridge;

beforeAll(async () => {
  const folder = await mkdtemp(join(tmpdir(), 'bridge-auth-acl-'));
  const file = join(folder, 'auth.yaml');
  const [alice, bob, mallory, worker] = await Promise.all(
    ['alice', 'bob', 'mallory', 'worker'].map((password) => hashPassword(password)),
  );
  await writeFile(
    file,
    `
users:
  alice:
    password: ${alice}
    clientIds: ['{username}-*']
    acl: # before the shared rules: alice may read her own part of secret/
      - allow: subscribe
        topics: ['secret/alice/#']
  bob:
    password: ${bob}
  mallory:
    password: ${mallory}
    clientIds: '*'
  worker:
    password: ${worker}
    acl:
      - allow: subscribe
        topics: ['jobs/#']
        shareGroups: ['workers', '{username}-*']
      - deny: subscribe
        topics: ['jobs/#']
        shareGroups: '*'
clientIds: ['{username}']
acl:
  - deny: subscribe
    topics: ['secret/#']
  - deny: publish
    topics: ['readonly/#']
  - allow: all
    topics: ['#']
anonymous:
  clientIds: ['guest-*']
  acl:
    - deny: all
      topics: ['private/#']
    - allow: subscribe
      topics: ['#']
`,
  );
  running = await startBridge('uplink: []\n', { auth: { file } });
});

afterAll(async () => {
  await running.stop();
});

const user = (name: string) => ({ username: name, password: name });

function connackOf(options: IClientOptions): Promise<number> {
  return connackOfClient(running.mqttPort, options);
}

/** SUBSCRIBE at QoS 1 to each filter; the SUBACK's codes. */
async function grants(raw: RawClient, version: 4 | 5, topics: string[]): Promise<number[]> {
  raw.send(
    { cmd: 'subscribe', messageId: 1, subscriptions: topics.map((topic) => ({ topic, qos: 1 })) },
    version,
  );
  return (await raw.next('suback')).granted as number[];
}

describe('deny rules, first match wins', () => {
  it('refuses subscriptions a deny rule overlaps: MQTT 5 0x87, 3.1.1 0x80', async () => {
    const v5 = await RawClient.connect(running.mqttPort);
    await v5.handshake({ clientId: 'bob', protocolVersion: 5, ...user('bob') });
    // `#` would match secret/x: refused, not filtered
    expect(await grants(v5, 5, ['#', 'secret/#', 'secret/x', '+/x', 'public/#'])).toEqual([
      0x87, 0x87, 0x87, 0x87, 1,
    ]);
    const v3 = await RawClient.connect(running.mqttPort);
    await v3.handshake({ clientId: 'bob', protocolVersion: 4, ...user('bob') }).catch(() => {
      throw new Error('bob could not take over his own client id');
    });
    expect(await grants(v3, 4, ['#', 'other/+'])).toEqual([0x80, 1]);
  });

  it("judges a user's own rules before the shared ones", async () => {
    const alice = await RawClient.connect(running.mqttPort);
    await alice.handshake({ clientId: 'alice-1', protocolVersion: 5, ...user('alice') });
    expect(await grants(alice, 5, ['secret/alice/#', 'secret/bob/#', 'secret/+/x'])).toEqual([
      1, 0x87, 0x87,
    ]);
  });

  it('denies publishing where a deny rule comes first: PUBACK 0x87, nothing delivered', async () => {
    const watcher = await connectClient(running.mqttPort, {
      clientId: 'mallory',
      ...user('mallory'),
    });
    const seen = collect(watcher);
    await watcher.subscribeAsync('readonly/#', { qos: 1 });
    const v5 = await RawClient.connect(running.mqttPort);
    await v5.handshake({ clientId: 'bob', protocolVersion: 5, ...user('bob') });
    const publish = (topic: string, messageId: number) => ({
      cmd: 'publish' as const,
      topic,
      payload: Buffer.from(topic),
      qos: 1 as const,
      dup: false,
      retain: false,
      messageId,
    });
    v5.send(publish('readonly/x', 1), 5);
    expect((await v5.next('puback')).reasonCode).toBe(0x87);
    v5.send(publish('writable/x', 2), 5);
    expect((await v5.next('puback')).reasonCode).toBeLessThan(0x80);
    const poster = await connectClient(running.mqttPort, {
      clientId: 'mallory-2',
      ...user('mallory'),
    });
    await poster.publishAsync('readonly/y', 'no', { qos: 1 });
    // mallory may subscribe to readonly/# but nobody may publish there
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toEqual([]);
  });

  it('applies anonymous deny rules', async () => {
    const anonymous = await RawClient.connect(running.mqttPort);
    await anonymous.handshake({ clientId: 'guest-1', protocolVersion: 5 });
    expect(await grants(anonymous, 5, ['news/#', 'private/x', '#'])).toEqual([1, 0x87, 0x87]);
  });
});

describe('client ids bound to identities', () => {
  it("refuses a client id outside the user's patterns: MQTT 5 0x85, 3.1.1 0x02", async () => {
    // bob has the shared pattern {username} only; alice her own {username}-* and the shared one
    expect(await connackOf({ clientId: 'alice-1', ...user('bob') })).toBe(2);
    expect(await connackOf({ clientId: 'alice-1', protocolVersion: 5, ...user('bob') })).toBe(0x85);
    expect(await connackOf({ clientId: 'alice-7', protocolVersion: 5, ...user('alice') })).toBe(0);
    expect(await connackOf({ clientId: 'alice', protocolVersion: 5, ...user('alice') })).toBe(0);
    expect(await connackOf({ clientId: 'alicex', protocolVersion: 5, ...user('alice') })).toBe(
      0x85,
    );
    expect(await connackOf({ clientId: 'bob', protocolVersion: 5, ...user('bob') })).toBe(0);
    // a wrong password is still 0x86, whatever the client id: nothing is told before that
    expect(
      await connackOf({ clientId: 'x', protocolVersion: 5, username: 'bob', password: 'no' }),
    ).toBe(0x86);
  });

  it('binds anonymous clients to their own patterns, and accepts a server-assigned id', async () => {
    expect(await connackOf({ clientId: 'guest-2', protocolVersion: 5 })).toBe(0);
    expect(await connackOf({ clientId: 'sensor-1', protocolVersion: 5 })).toBe(0x85);
    expect(await connackOf({ clientId: 'sensor-1' })).toBe(2);
    const raw = await RawClient.connect(running.mqttPort);
    const connack = await raw.handshake({ clientId: '', protocolVersion: 5 });
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties?.assignedClientIdentifier).toMatch(/^auto-/);
  });

  it("refuses taking over another user's connected client, whatever Clean Start", async () => {
    // anonymous clients (guest-*) and mallory (*) may both name guest-live: the first owns it
    const guest = await RawClient.connect(running.mqttPort);
    expect((await guest.handshake({ clientId: 'guest-live', protocolVersion: 5 })).reasonCode).toBe(
      0,
    );
    const taker = await RawClient.connect(running.mqttPort);
    const refused = await taker.handshake({
      clientId: 'guest-live',
      protocolVersion: 5,
      ...user('mallory'),
    });
    expect(refused.reasonCode).toBe(0x85);
    // the guest is still connected
    guest.send({ cmd: 'pingreq' }, 5);
    await guest.next('pingresp');
  });

  it('refuses resuming (or clearing) a kept session created by another user', async () => {
    // a persistent session of an anonymous guest
    const guest = await connectClient(running.mqttPort, { clientId: 'guest-kept', clean: false });
    await guest.subscribeAsync('news/#', { qos: 1 });
    await guest.endAsync();
    for (const clean of [false, true]) {
      expect(
        await connackOf({ clientId: 'guest-kept', clean, ...user('mallory') }),
        `clean ${String(clean)}`,
      ).toBe(2);
    }
    expect(
      await connackOf({
        clientId: 'guest-kept',
        protocolVersion: 5,
        clean: true,
        ...user('mallory'),
      }),
    ).toBe(0x85);
    // the owner resumes it, subscriptions and all
    const back = await connectClient(running.mqttPort, { clientId: 'guest-kept', clean: false });
    const seen = collect(back);
    const poster = await connectClient(running.mqttPort, { clientId: 'bob', ...user('bob') });
    await poster.publishAsync('news/today', 'kept', { qos: 1 });
    await waitFor(() => seen.length === 1);
    expect(seen[0]?.payload).toBe('kept');
  });
});

describe('share groups under the ACL', () => {
  it('needs a rule naming the group once rules name groups', async () => {
    const worker = await RawClient.connect(running.mqttPort);
    await worker.handshake({ clientId: 'worker', protocolVersion: 5, ...user('worker') });
    expect(
      await grants(worker, 5, [
        '$share/workers/jobs/#',
        '$share/worker-a/jobs/+',
        '$share/backend/jobs/#',
        '$queue/jobs/#',
        'jobs/#',
      ]),
    ).toEqual([1, 1, 0x87, 0x87, 1]);
    // bob's rules name no group: with groups ruled in the file, he may join none
    const bob = await RawClient.connect(running.mqttPort);
    await bob.handshake({ clientId: 'bob', protocolVersion: 5, ...user('bob') });
    expect(await grants(bob, 5, ['$share/workers/jobs/#', 'jobs/#'])).toEqual([0x87, 1]);
  });
});

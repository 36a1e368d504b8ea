import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthReloadResult } from '../../src/auth/auth-reloader.js';
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
 * Reload of the users and ACL file against a real bridge: Bridge.reloadAuth() (what SIGHUP
 * calls), and the bridge's own watch of the file.
 */
let running: RunningBridge;
let file: string;
const verifiers = new Map<string, string>();

const NAMES = ['alice', 'bob', 'carol', 'dave', 'erin'] as const;
type Name = (typeof NAMES)[number];

/** The auth file: these users (password = name), each with these extra lines, and the shared rules. */
function authFile(users: Partial<Record<Name, string>>, shared: string): string {
  const lines = ['users:'];
  for (const [name, extra] of Object.entries(users)) {
    lines.push(`  ${name}:`, `    password: ${verifiers.get(name) ?? ''}`);
    if (extra) lines.push(...extra.split('\n').map((line) => `    ${line}`));
  }
  return `${lines.join('\n')}\nacl:\n${shared}\n`;
}

const ALLOW_ALL = `  - allow: all\n    topics: ['#']`;
const EVERYONE = { alice: '', bob: '', carol: '', dave: '', erin: '' };

/** Every user but one. */
function without(name: Name): Partial<Record<Name, string>> {
  return Object.fromEntries(Object.entries(EVERYONE).filter(([user]) => user !== name));
}

/** Replaces the file as editors do (write a temporary file, rename it over). */
async function replaceFile(text: string): Promise<void> {
  const temporary = `${file}.tmp`;
  await writeFile(temporary, text);
  await rename(temporary, file);
}

/** Writes the file and reloads it (as SIGHUP does). */
async function reloadWith(text: string): Promise<AuthReloadResult> {
  await replaceFile(text);
  return running.bridge.reloadAuth();
}

beforeAll(async () => {
  for (const name of NAMES) verifiers.set(name, await hashPassword(name, { iterations: 4096 }));
  const folder = await mkdtemp(join(tmpdir(), 'bridge-auth-reload-'));
  file = join(folder, 'auth.yaml');
  await writeFile(file, authFile(EVERYONE, ALLOW_ALL));
  running = await startBridge('uplink: []\n', { auth: { file } });
});

afterAll(async () => {
  await running.stop();
});

const login = (name: Name) => ({ username: name, password: name });

function connackOf(options: IClientOptions): Promise<number> {
  return connackOfClient(running.mqttPort, options);
}

describe('reload of the users and ACL file', () => {
  it('disconnects the clients of a removed user: MQTT 5 DISCONNECT 0x87, 3.1.1 closed', async () => {
    await reloadWith(authFile(EVERYONE, ALLOW_ALL));
    const v5 = await RawClient.connect(running.mqttPort);
    await v5.handshake({ clientId: 'alice-5', protocolVersion: 5, ...login('alice') });
    const v3 = await RawClient.connect(running.mqttPort);
    await v3.handshake({ clientId: 'alice-3', protocolVersion: 4, ...login('alice') });
    const bob = await RawClient.connect(running.mqttPort);
    await bob.handshake({ clientId: 'bob', protocolVersion: 5, ...login('bob') });

    const withoutAlice = without('alice');
    expect(await reloadWith(authFile(withoutAlice, ALLOW_ALL))).toEqual({ ok: true, users: 4 });
    expect((await v5.next('disconnect')).reasonCode).toBe(0x87);
    await v5.waitClosed();
    await v3.waitClosed();
    // bob stays
    bob.send({ cmd: 'pingreq' }, 5);
    await bob.next('pingresp');
    expect(await connackOf({ clientId: 'alice-5', protocolVersion: 5, ...login('alice') })).toBe(
      0x86,
    );
  });

  it('refuses an invalid file with file:line:column and keeps the old one in force', async () => {
    await reloadWith(authFile(EVERYONE, ALLOW_ALL));
    const bob = await connectClient(running.mqttPort, { clientId: 'bob-keep', ...login('bob') });
    const result = await reloadWith(`${authFile({ bob: '' }, ALLOW_ALL)}  - deny: publsh\n`);
    expect(result.ok).toBe(false);
    const issues = result.ok ? [] : result.issues;
    expect(issues).toEqual(
      expect.arrayContaining([
        {
          file,
          line: 7,
          column: 11,
          message: 'expected publish, subscribe or all (did you mean "publish"?)',
        },
        { file, line: 7, column: 5, message: 'missing required field "topics"' },
      ]),
    );
    // alice is still a user, bob still connected and allowed
    expect(await connackOf({ clientId: 'alice', ...login('alice') })).toBe(0);
    expect(bob.connected).toBe(true);
    await bob.publishAsync('anything/x', 'still allowed', { qos: 1 });
  });

  it('applies new rights at once: publishes, new and existing subscriptions', async () => {
    await reloadWith(authFile(EVERYONE, ALLOW_ALL));
    const reader = await connectClient(running.mqttPort, {
      clientId: 'carol-r',
      protocolVersion: 5,
      ...login('carol'),
    });
    const seen = collect(reader);
    await reader.subscribeAsync(['news/#', 'sport/#'], { qos: 1 });
    const writer = await RawClient.connect(running.mqttPort);
    await writer.handshake({ clientId: 'bob-w', protocolVersion: 5, ...login('bob') });

    const rules = `  - deny: subscribe\n    topics: ['news/secret/#']\n  - deny: publish\n    topics: ['sport/#']\n${ALLOW_ALL}`;
    expect((await reloadWith(authFile(EVERYONE, rules))).ok).toBe(true);
    // news/# overlaps the new deny: the subscription is gone; sport/# is kept
    const publish = (topic: string, messageId: number) => ({
      cmd: 'publish' as const,
      topic,
      payload: Buffer.from(topic),
      qos: 1 as const,
      dup: false,
      retain: false,
      messageId,
    });
    writer.send(publish('news/public', 1), 5);
    expect((await writer.next('puback')).reasonCode).toBe(0x10); // no subscriber any more
    writer.send(publish('sport/x', 2), 5);
    expect((await writer.next('puback')).reasonCode).toBe(0x87); // publishing there is denied now
    writer.send(publish('weather/x', 3), 5);
    expect((await writer.next('puback')).reasonCode).toBeLessThan(0x80);
    await expect(reader.subscribeAsync('news/#', { qos: 1 })).rejects.toThrow('Not authorized');
    expect((await reader.subscribeAsync('news/public/#', { qos: 1 }))[0]?.qos).toBe(1);
    const poster = await connectClient(running.mqttPort, { clientId: 'erin', ...login('erin') });
    await poster.publishAsync('news/public/a', 'via the new subscription', { qos: 1 });
    await waitFor(() => seen.length === 1);
    expect(seen.map(({ topic }) => topic)).toEqual(['news/public/a']);
  });

  it('judges a kept session again when the ACL changes: subscriptions and waiting messages', async () => {
    await reloadWith(authFile(EVERYONE, ALLOW_ALL));
    const session = {
      clientId: 'dave-kept',
      protocolVersion: 5 as const,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
      ...login('dave'),
    };
    const first = await RawClient.connect(running.mqttPort);
    await first.handshake(session);
    first.send(
      {
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [
          { topic: 'feed/#', qos: 1 },
          { topic: 'other/#', qos: 1 },
        ],
      },
      5,
    );
    expect((await first.next('suback')).granted).toEqual([1, 1]);
    first.send({ cmd: 'disconnect', reasonCode: 0 }, 5);
    await first.waitClosed();
    const poster = await connectClient(running.mqttPort, { clientId: 'erin', ...login('erin') });
    await poster.publishAsync('feed/1', 'queued before', { qos: 1 });

    const rules = `  - deny: all\n    topics: ['feed/#']\n${ALLOW_ALL}`;
    expect((await reloadWith(authFile(EVERYONE, rules))).ok).toBe(true);
    await poster.publishAsync('other/1', 'queued after', { qos: 1 });

    const back = await RawClient.connect(running.mqttPort);
    expect((await back.handshake(session)).sessionPresent).toBe(true);
    // the message queued for feed/# is withdrawn; the other one arrives
    const delivered = await back.next('publish');
    expect(delivered.topic).toBe('other/1');
    back.send({ cmd: 'puback', messageId: delivered.messageId ?? 0, reasonCode: 0 }, 5);
    // feed/# was removed from the session, other/# kept
    back.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['feed/#', 'other/#'] }, 5);
    expect((await back.next('unsuback')).granted).toEqual([0x11, 0]);
  });

  it('ends the kept sessions of a removed user, and disconnects ids outside new patterns', async () => {
    await reloadWith(authFile(EVERYONE, ALLOW_ALL));
    const kept = await connectClient(running.mqttPort, {
      clientId: 'erin-kept',
      clean: false,
      ...login('erin'),
    });
    await kept.subscribeAsync('x/#', { qos: 1 });
    await kept.endAsync();
    const bob = await RawClient.connect(running.mqttPort);
    await bob.handshake({ clientId: 'not-bob', protocolVersion: 5, ...login('bob') });

    const withoutErin = without('erin');
    const withPatterns = { ...withoutErin, bob: "clientIds: ['{username}']" };
    expect((await reloadWith(authFile(withPatterns, ALLOW_ALL))).ok).toBe(true);
    expect((await bob.next('disconnect')).reasonCode).toBe(0x87);

    // erin comes back: her old session is gone
    expect((await reloadWith(authFile(EVERYONE, ALLOW_ALL))).ok).toBe(true);
    let present: boolean | undefined;
    await connectClient(
      running.mqttPort,
      { clientId: 'erin-kept', clean: false, ...login('erin') },
      (client) => {
        client.once('connect', (connack) => {
          present = connack.sessionPresent;
        });
      },
    );
    expect(present).toBe(false);
  });

  it('reloads by itself when the file changes', async () => {
    await reloadWith(authFile(EVERYONE, ALLOW_ALL));
    const carol = await RawClient.connect(running.mqttPort);
    await carol.handshake({ clientId: 'carol-w', protocolVersion: 5, ...login('carol') });
    const withoutCarol = without('carol');
    await replaceFile(authFile(withoutCarol, ALLOW_ALL)); // no reload() call
    expect((await carol.next('disconnect')).reasonCode).toBe(0x87);
  });
});

import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/scram-verifier.js';
import { connackOf, startBridge, type RunningBridge } from '../support/bridge.js';
import { RawClient } from '../support/raw-client.js';

/*
 * JSON Web Tokens in the MQTT password field, against a real bridge: MQTT 5 (token alone) and
 * 3.1.1 (user name = the token's subject), claims in ACL and client id patterns, refusals, and
 * a connection closed when its token expires.
 */
const SECRET = 'integration-secret-of-32-bytes-or-more';
let running: RunningBridge;
let authFile: string;

const now = (): number => Math.floor(Date.now() / 1000);

function token(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(secret));
}

const acme = (seconds = 300): Promise<string> =>
  token({ sub: 'pump-1', tenant: 'acme', exp: now() + seconds });

beforeAll(async () => {
  const folder = await mkdtemp(join(tmpdir(), 'bridge-auth-jwt-'));
  await writeFile(join(folder, 'jwt.secret'), SECRET);
  const file = join(folder, 'auth.yaml');
  authFile = file;
  const bob = await hashPassword('bob-secret', { iterations: 4096 });
  await writeFile(
    file,
    [
      'jwt:',
      '  secretFile: jwt.secret',
      '  algorithms: [HS256]',
      'users:',
      '  bob:',
      `    password: '${bob}'`,
      'acl:',
      '  - deny: all',
      "    topics: ['tenants/{claims.tenant}/admin/#']",
      '  - allow: all',
      "    topics: ['tenants/{claims.tenant}/#', 'users/{username}/#']",
      "clientIds: ['{claims.tenant}-*', '{username}']",
      '',
    ].join('\n'),
  );
  running = await startBridge('uplink: []\n', { auth: { file } });
});

afterAll(async () => {
  await running.stop();
});

/**
 * An MQTT 5 CONNECT with a password and no user name (MQTT 5 allows it; MQTT.js and
 * mqtt-packet's writer do not), clean start, keep alive 0, no properties.
 */
function passwordOnlyConnect(clientId: string, password: string): Buffer {
  const text = (value: Buffer): Buffer => {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(value.length);
    return Buffer.concat([length, value]);
  };
  const body = Buffer.concat([
    text(Buffer.from('MQTT')),
    Buffer.from([5, 0x40 | 0x02, 0, 0, 0]), // level, flags: password + clean start, keep alive, no properties
    text(Buffer.from(clientId)),
    text(Buffer.from(password)),
  ]);
  const length: number[] = [];
  let left = body.length;
  do {
    length.push((left % 128) | (left >= 128 ? 0x80 : 0));
    left = Math.floor(left / 128);
  } while (left > 0);
  return Buffer.concat([Buffer.from([0x10, ...length]), body]);
}

/** Connects with the token alone (MQTT 5) and returns the client and its CONNACK code. */
async function connectWithToken(clientId: string, password: string) {
  const client = await RawClient.connect(running.mqttPort);
  client.expectVersion(5);
  client.send(passwordOnlyConnect(clientId, password));
  return { client, reasonCode: (await client.next('connack')).reasonCode };
}

const publish = (topic: string, messageId: number) => ({
  cmd: 'publish' as const,
  topic,
  payload: Buffer.from('x'),
  qos: 1 as const,
  dup: false,
  retain: false,
  messageId,
});

describe('JWT authentication', () => {
  it('MQTT 5: the token alone authenticates; claims decide topics', async () => {
    const { client, reasonCode } = await connectWithToken('acme-7', await acme());
    expect(reasonCode).toBe(0);
    client.send(publish('tenants/acme/pump-1/level', 1), 5);
    expect((await client.next('puback')).reasonCode).toBeLessThan(0x80);
    client.send(publish('tenants/globex/x', 2), 5);
    expect((await client.next('puback')).reasonCode).toBe(0x87);
    client.send(publish('tenants/acme/admin/reset', 3), 5);
    expect((await client.next('puback')).reasonCode).toBe(0x87);
    expect((await client.subscribe('users/pump-1/#', 1)).granted).toEqual([1]);
    expect((await client.subscribe('tenants/+/x', 1)).granted).toEqual([0x87]);
  });

  it('MQTT 3.1.1: the user name must be the token subject', async () => {
    const password = await acme();
    const port = running.mqttPort;
    expect(await connackOf(port, { clientId: 'acme-8', username: 'pump-1', password })).toBe(0);
    expect(await connackOf(port, { clientId: 'acme-9', username: 'pump-2', password })).toBe(4);
  });

  it('refuses expired, foreign-key and client-id-mismatched tokens', async () => {
    const port = running.mqttPort;
    const v5 = { protocolVersion: 5 as const, clientId: 'acme-1' };
    const expired = await token({ sub: 'pump-1', tenant: 'acme', exp: now() - 5 });
    expect(await connackOf(port, { ...v5, username: 'pump-1', password: expired })).toBe(0x86);
    const forged = await token({ sub: 'pump-1', tenant: 'acme', exp: now() + 60 }, `${SECRET}!`);
    expect(await connackOf(port, { ...v5, username: 'pump-1', password: forged })).toBe(0x86);
    // the client id must match {claims.tenant}-* (or the user name)
    const other = { protocolVersion: 5 as const, clientId: 'globex-1' };
    expect(await connackOf(port, { ...other, username: 'pump-1', password: await acme() })).toBe(
      0x85,
    );
    // passwords that are not tokens are still checked against the users file
    expect(
      await connackOf(port, { clientId: 'bob', username: 'bob', password: 'bob-secret' }),
    ).toBe(0);
  });

  it('closes a connection when its token expires: MQTT 5 DISCONNECT 0x87, 3.1.1 closed', async () => {
    const shortLived = await acme(2);
    const { client: v5, reasonCode } = await connectWithToken('acme-short-5', shortLived);
    expect(reasonCode).toBe(0);
    const v3 = await RawClient.connect(running.mqttPort);
    const connack3 = await v3.handshake({
      clientId: 'acme-short-3',
      protocolVersion: 4,
      username: 'pump-1',
      password: Buffer.from(shortLived),
    });
    expect(connack3.returnCode).toBe(0);
    const disconnect = await v5.next('disconnect', 10_000);
    expect(disconnect.reasonCode).toBe(0x87);
    await v5.waitClosed();
    await v3.waitClosed();
  });

  it('a reload without the jwt section disconnects the clients that came with a token', async () => {
    const { client, reasonCode } = await connectWithToken('acme-reload', await acme());
    expect(reasonCode).toBe(0);
    const bob = await RawClient.connect(running.mqttPort);
    const connack = await bob.handshake({
      clientId: 'bob',
      protocolVersion: 5,
      username: 'bob',
      password: Buffer.from('bob-secret'),
    });
    expect(connack.reasonCode).toBe(0);
    const text = await readFile(authFile, 'utf8');
    await writeFile(authFile, text.replace(/^jwt:\n( {2}.*\n)+/u, ''));
    expect(await running.bridge.reloadAuth()).toMatchObject({ ok: true });
    expect((await client.next('disconnect')).reasonCode).toBe(0x87);
    await client.waitClosed();
    bob.send({ cmd: 'pingreq' }, 5);
    await bob.next('pingresp');
  });
});

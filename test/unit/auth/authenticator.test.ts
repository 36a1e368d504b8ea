import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuthFileError, loadAuth, readAuthContent } from '../../../src/auth/authenticator.js';
import type { AuthResult, Principal } from '../../../src/auth/authenticator.js';
import { DEFAULT_ITERATIONS, hashPassword } from '../../../src/auth/scram-verifier.js';
import { unproved } from '../../../src/auth/identity.js';
import type { Identity } from '../../../src/auth/identity.js';
import { ScramClient } from '../../support/scram-client.js';

async function authFile(text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'auth-')), 'auth.yaml');
  await writeFile(path, text);
  return path;
}

function principal(result: AuthResult): Principal {
  if (!result.ok) throw new Error(`refused: ${result.reason}`);
  return result.principal;
}

const file = authFile(
  [
    'users:',
    '  alice:',
    `    password: '${await hashPassword('alice-secret')}'`,
    '    acl:',
    '      - { allow: subscribe, topics: [alerts/#] }',
    '  bob:',
    `    password: '${await hashPassword('bob-secret', { iterations: 5000 })}'`,
    'acl:',
    "  - { allow: all, topics: ['devices/{username}/#', 'clients/{clientId}/#'] }",
    'anonymous:',
    '  acl:',
    "    - { allow: publish, topics: ['anon/{clientId}'] }",
    '',
  ].join('\n'),
);

/** A user who proved who it is with a password. */
const byPassword = (username: string): Identity => ({ username, proof: 'password' });

describe('loadAuth', () => {
  it('with the empty path turns authentication off: anyone may do anything', async () => {
    const auth = await loadAuth('');
    expect(auth.enabled).toBe(false);
    const nobody = principal(await auth.authenticatePassword('who', 'ever', 'c'));
    expect(nobody.identity.username).toBe('who');
    expect(nobody.permissions.canPublish('$SYS/x')).toBe(true);
    expect(nobody.permissions.canSubscribe('#')).toBe(true);
    expect(
      principal(await auth.authenticatePassword(undefined, undefined, 'c')).identity.username,
    ).toBe(undefined);
  });

  it('checks user names and passwords', async () => {
    const auth = await loadAuth(await file);
    expect(auth.enabled).toBe(true);
    const alice = principal(await auth.authenticatePassword('alice', 'alice-secret', 'dev-1'));
    expect(alice).toMatchObject({ identity: { username: 'alice' }, clientId: 'dev-1' });
    const bob = await auth.authenticatePassword('bob', Buffer.from('bob-secret'), 'dev-2');
    expect(bob.ok).toBe(true);
    expect(await auth.authenticatePassword('alice', 'bob-secret', 'dev-1')).toEqual({
      ok: false,
      reason: 'bad-credentials',
    });
    expect(await auth.authenticatePassword('alice', undefined, 'dev-1')).toEqual({
      ok: false,
      reason: 'bad-credentials',
    });
    expect(await auth.authenticatePassword('mallory', 'alice-secret', 'dev-1')).toEqual({
      ok: false,
      reason: 'bad-credentials',
    });
  });

  it("gives a user their own rules and the shared ones, with this connection's values", async () => {
    const auth = await loadAuth(await file);
    const alice = principal(await auth.authenticatePassword('alice', 'alice-secret', 'dev-1'));
    const { permissions } = alice;
    expect(permissions.canPublish('devices/alice/temp')).toBe(true);
    expect(permissions.canPublish('devices/bob/temp')).toBe(false);
    expect(permissions.canPublish('clients/dev-1/x')).toBe(true);
    expect(permissions.canPublish('alerts/fire')).toBe(false);
    expect(permissions.canSubscribe('alerts/#')).toBe(true);
    expect(permissions.canSubscribe('devices/alice/#')).toBe(true);
    expect(permissions.canSubscribe('devices/#')).toBe(false);
    expect(permissions.canPublish('anon/dev-1')).toBe(false);

    const bob = principal(await auth.authenticatePassword('bob', 'bob-secret', 'dev-2'));
    expect(bob.permissions.canSubscribe('alerts/#')).toBe(false);
    expect(bob.permissions.canPublish('clients/dev-2/x')).toBe(true);
  });

  it('lets anonymous clients in with the anonymous rules only', async () => {
    const auth = await loadAuth(await file);
    const anonymous = principal(await auth.authenticatePassword(undefined, 'ignored', 'dev-9'));
    expect(anonymous.identity.username).toBeUndefined();
    expect(anonymous.permissions.canPublish('anon/dev-9')).toBe(true);
    expect(anonymous.permissions.canPublish('anon/dev-8')).toBe(false);
    expect(anonymous.permissions.canPublish('clients/dev-9/x')).toBe(false);
    expect(anonymous.permissions.canSubscribe('anon/dev-9')).toBe(false);
  });

  it('refuses anonymous clients when the file has no `anonymous`', async () => {
    const auth = await loadAuth(await authFile('users: {}\n'));
    expect(await auth.authenticatePassword(undefined, undefined, 'c')).toEqual({
      ok: false,
      reason: 'not-authorized',
    });
  });

  it('runs SCRAM-SHA-256 over the same users; authorize() then gives the principal', async () => {
    const auth = await loadAuth(await file);
    const client = new ScramClient('bob', 'bob-secret');
    const conversation = auth.scram();
    const first = conversation.start(client.first());
    if (!('serverFirst' in first)) throw new Error(first.error);
    expect(first.serverFirst.toString()).toMatch(/,i=5000$/);
    const final = conversation.finish(client.final(first.serverFirst));
    expect(final).toEqual({ serverFinal: Buffer.from(client.serverFinal), username: 'bob' });

    const bob = principal(auth.authorize(byPassword('bob'), 'dev-2'));
    expect(bob.permissions.canPublish('devices/bob/x')).toBe(true);
    expect(auth.authorize(byPassword('mallory'), 'dev-2')).toEqual({
      ok: false,
      reason: 'bad-credentials',
    });
  });

  it('tells unknown SCRAM users the iterations most users have', async () => {
    const auth = await loadAuth(await file);
    const first = auth.scram().start(new ScramClient('mallory', 'x').first());
    // alice has the default, bob 5000: a tie goes to the first.
    expect('serverFirst' in first && first.serverFirst.toString()).toMatch(
      new RegExp(`,i=${DEFAULT_ITERATIONS}$`),
    );
  });

  it('loads the example file', async () => {
    const auth = await loadAuth('examples/auth.yaml');
    const sensor = principal(await auth.authenticatePassword('sensor-1', 'sensor-1-secret', 's1'));
    expect(sensor.permissions.canPublish('devices/sensor-1/telemetry/temp')).toBe(true);
    expect(sensor.permissions.canPublish('devices/sensor-2/telemetry/temp')).toBe(false);
    // the deny rule comes first: a device never publishes commands
    expect(sensor.permissions.canPublish('devices/sensor-1/cmd/reboot')).toBe(false);
    expect(auth.allowsClientId(sensor.identity, 'sensor-1')).toBe(true);
    expect(auth.allowsClientId(sensor.identity, 'dashboard-1')).toBe(false);
    const dashboard = principal(
      await auth.authenticatePassword('dashboard', 'dashboard-secret', 'web'),
    );
    expect(dashboard.permissions.canSubscribe('$share/dashboards/devices/+/status')).toBe(true);
    expect(dashboard.permissions.canPublish('devices/sensor-1/cmd/reboot')).toBe(true);
  });

  it('throws an AuthFileError listing every problem with its position', async () => {
    const path = await authFile('users:\n  alice:\n    pasword: x\nacl: 3\n');
    const error = await loadAuth(path).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthFileError);
    expect((error as AuthFileError).code).toBe('CONFIG_INVALID');
    expect((error as AuthFileError).message.split('\n')).toEqual([
      `${path}:3:5: unknown field "pasword" (did you mean "password"?)`,
      `${path}:4:6: expected a list`,
    ]);
  });

  it('says when the file cannot be read', async () => {
    await expect(loadAuth('/nonexistent/auth.yaml')).rejects.toThrow(
      '/nonexistent/auth.yaml: cannot read: no such file',
    );
  });
});

describe('client ids and reloads', () => {
  it('allows any client id when no clientIds is written', async () => {
    const auth = await loadAuth(await file);
    expect(auth.allowsClientId(byPassword('alice'), 'whatever')).toBe(true);
    expect(auth.allowsClientId(unproved(undefined), 'whatever')).toBe(true);
  });

  it("binds client ids to a user's own and the shared patterns, anonymous to its own", async () => {
    const verifier = await hashPassword('x', { iterations: 4096 });
    const auth = await loadAuth(
      await authFile(
        [
          'users:',
          '  alice:',
          `    password: '${verifier}'`,
          "    clientIds: ['{username}-*']",
          '  bob:',
          `    password: '${verifier}'`,
          "clientIds: '{username}'",
          'anonymous:',
          "  clientIds: ['guest-*']",
          '',
        ].join('\n'),
      ),
    );
    expect(auth.allowsClientId(byPassword('alice'), 'alice')).toBe(true);
    expect(auth.allowsClientId(byPassword('alice'), 'alice-1')).toBe(true);
    expect(auth.allowsClientId(byPassword('alice'), 'bob')).toBe(false);
    expect(auth.allowsClientId(byPassword('bob'), 'bob')).toBe(true);
    expect(auth.allowsClientId(byPassword('bob'), 'alice-1')).toBe(false);
    expect(auth.allowsClientId(byPassword('mallory'), 'mallory')).toBe(false);
    expect(auth.allowsClientId(unproved(undefined), 'guest-7')).toBe(true);
    expect(auth.allowsClientId(unproved(undefined), 'alice')).toBe(false);
    // an id the server assigned is new and nobody else's
    expect(auth.allowsClientId(byPassword('bob'), 'auto-1234', true)).toBe(true);
  });

  it('puts a new version in force at once and tells its listeners in the same step', async () => {
    const auth = await loadAuth(await file);
    const seen: boolean[] = [];
    auth.onReplaced(() => seen.push(auth.authorize(byPassword('alice'), 'c').ok));
    auth.replace(await readAuthContent(await authFile('users: {}\n')));
    expect(seen).toEqual([false]);
    expect(auth.authorize(byPassword('alice'), 'c')).toEqual({
      ok: false,
      reason: 'bad-credentials',
    });
    expect(auth.authorize(unproved(undefined), 'c')).toEqual({
      ok: false,
      reason: 'not-authorized',
    });
  });
});

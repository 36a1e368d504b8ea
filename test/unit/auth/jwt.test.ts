import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { AuthFileError, loadAuth, readAuthContent } from '../../../src/auth/authenticator.js';
import type { Authenticator } from '../../../src/auth/authenticator.js';
import { looksLikeToken } from '../../../src/auth/jwt.js';

const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
let folder: string;

async function file(name: string, text: string): Promise<string> {
  const path = join(folder, name);
  await writeFile(path, text);
  return path;
}

/** A users file with this `jwt` section and rules using the token's claims. */
function authText(jwt: string): string {
  return [
    'jwt:',
    ...jwt.split('\n').map((line) => `  ${line}`),
    'acl:',
    '  - allow: all',
    "    topics: ['tenants/{claims.tenant}/#', 'users/{username}/#']",
    "clientIds: ['{claims.tenant}-*']",
    '',
  ].join('\n');
}

interface Claims {
  sub?: string;
  tenant?: string;
  exp?: number;
  nbf?: number;
  iss?: string;
  aud?: string;
}

const now = (): number => Math.floor(Date.now() / 1000);

async function hs256(claims: Claims, secret = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg })
    .sign(new TextEncoder().encode(secret));
}

async function authWith(jwt: string): Promise<Authenticator> {
  return loadAuth(await file('auth.yaml', authText(jwt)));
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'bridge-jwt-'));
  await file('secret', `${SECRET}\n`);
});

describe('JSON Web Tokens in the password field', () => {
  it('makes the token claim the user name, with claims usable in patterns', async () => {
    const auth = await authWith('secretFile: secret\nalgorithms: [HS256]');
    const token = await hs256({ sub: 'dev-7', tenant: 'acme', exp: now() + 60 });
    const result = await auth.authenticatePassword(undefined, token, 'acme-1');
    if (!result.ok) throw new Error(result.reason);
    const { identity, permissions } = result.principal;
    expect(identity).toMatchObject({
      username: 'dev-7',
      proof: 'token',
      claims: { tenant: 'acme' },
    });
    expect(identity.expiresAt).toBeGreaterThan(Date.now());
    expect(permissions.canPublish('tenants/acme/x')).toBe(true);
    expect(permissions.canPublish('users/dev-7/x')).toBe(true);
    expect(permissions.canPublish('tenants/other/x')).toBe(false);
    expect(auth.allowsClientId(identity, 'acme-1')).toBe(true);
    expect(auth.allowsClientId(identity, 'other-1')).toBe(false);
    // the same user name sent with it is fine; another is refused
    expect((await auth.authenticatePassword('dev-7', token, 'acme-1')).ok).toBe(true);
    expect(await auth.authenticatePassword('dev-8', token, 'acme-1')).toMatchObject({
      ok: false,
      reason: 'bad-credentials',
      problem: 'user name "dev-8" is not the token\'s "dev-7"',
    });
  });

  it.each([
    ['expired', { sub: 'd', exp: now() - 10 }, SECRET, 'HS256', 'token expired'],
    ['not yet valid', { sub: 'd', exp: now() + 60, nbf: now() + 30 }, SECRET, 'HS256', /nbf/],
    ['signed with another key', { sub: 'd', exp: now() + 60 }, `${SECRET}x`, 'HS256', /signature/],
    [
      'of an algorithm not listed',
      { sub: 'd', exp: now() + 60 },
      SECRET.repeat(2),
      'HS512',
      /algorithm/,
    ],
    ['without exp', { sub: 'd' }, SECRET, 'HS256', /exp/],
    [
      'without the user name claim',
      { exp: now() + 60 },
      SECRET,
      'HS256',
      'no "sub" claim with a user name',
    ],
  ])('refuses a token %s', async (_what, claims, secret, alg, problem) => {
    const auth = await authWith('secretFile: secret\nalgorithms: [HS256]');
    const result = await auth.authenticatePassword(
      undefined,
      await hs256(claims, secret, alg),
      'c',
    );
    expect(result).toMatchObject({ ok: false, reason: 'bad-credentials' });
    expect(result.ok ? '' : result.problem).toMatch(problem);
  });

  it('checks issuer and audience when written, and takes another claim as user name', async () => {
    const auth = await authWith(
      'secretFile: secret\nalgorithms: [HS256]\nissuer: https://id.example\naudience: bridge\nusernameClaim: device',
    );
    const claims = { exp: now() + 60, iss: 'https://id.example', aud: 'bridge' };
    const good = await new SignJWT({ ...claims, device: 'pump-1' })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));
    const result = await auth.authenticatePassword(undefined, good, 'c');
    expect(result.ok && result.principal.identity.username).toBe('pump-1');
    const wrongAudience = await new SignJWT({ ...claims, aud: 'other', device: 'pump-1' })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));
    expect((await auth.authenticatePassword(undefined, wrongAudience, 'c')).ok).toBe(false);
  });

  it('verifies RS256 with a PEM public key and ES256 with a JWK set', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await file('rsa.pem', rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const rsaAuth = await authWith('publicKeyFile: rsa.pem\nalgorithms: [RS256]');
    const rsaToken = await new SignJWT({ sub: 'r', exp: now() + 60 })
      .setProtectedHeader({ alg: 'RS256' })
      .sign(rsa.privateKey);
    expect((await rsaAuth.authenticatePassword(undefined, rsaToken, 'c')).ok).toBe(true);

    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...(await exportJWK(ec.publicKey)), kid: 'k1', alg: 'ES256' };
    await file('keys.json', JSON.stringify({ keys: [jwk] }));
    const ecAuth = await authWith('jwksFile: keys.json\nalgorithms: [ES256]');
    const ecToken = await new SignJWT({ sub: 'e', exp: now() + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .sign(ec.privateKey);
    expect((await ecAuth.authenticatePassword(undefined, ecToken, 'c')).ok).toBe(true);
    // a token signed by the RSA key is not one of the set's
    expect((await ecAuth.authenticatePassword(undefined, rsaToken, 'c')).ok).toBe(false);
  });

  it('still checks passwords that are not tokens, and refuses tokens when jwt is removed', async () => {
    const auth = await authWith('secretFile: secret\nalgorithms: [HS256]');
    expect(await auth.authenticatePassword('bob', 'not-a-token', 'c')).toEqual({
      ok: false,
      reason: 'bad-credentials',
    });
    const token = await hs256({ sub: 'dev-7', tenant: 'acme', exp: now() + 60 });
    const result = await auth.authenticatePassword(undefined, token, 'acme-1');
    if (!result.ok) throw new Error(result.reason);
    auth.replace(await readAuthContent(await file('plain.yaml', 'users: {}\n')));
    expect(auth.authorize(result.principal.identity, 'acme-1')).toMatchObject({
      ok: false,
      reason: 'not-authorized',
    });
  });
});

describe('the jwt section', () => {
  async function problems(jwt: string): Promise<string[]> {
    const path = await file('bad.yaml', authText(jwt));
    const error = await readAuthContent(path).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthFileError);
    return (error as AuthFileError).issues.map(
      (issue) => `${issue.line}:${issue.column}: ${issue.message}`,
    );
  }

  it.each([
    ['algorithms: [HS256]', ['2:3: expected exactly one of secretFile, publicKeyFile, jwksFile']],
    [
      'secretFile: secret\npublicKeyFile: rsa.pem\nalgorithms: [HS256]',
      ['3:3: expected exactly one of secretFile, publicKeyFile, jwksFile'],
    ],
    ['secretFile: secret', ['2:3: missing required field "algorithms"']],
    [
      'secretFile: secret\nalgorithms: [HS265]',
      ['3:16: unknown algorithm "HS265" (did you mean "HS256"?)'],
    ],
    [
      'secretFile: secret\nalgorithms: [RS256]',
      ['2:15: a secretFile goes with HS256, HS384 or HS512 only'],
    ],
    ['secretFile: secret\nalgorithms: [HS512]', ['2:15: HS512 needs a secret of 64 bytes or more']],
    [
      'secretFile: nowhere\nalgorithms: [HS256]',
      [expect.stringMatching(/^2:15: cannot read .*nowhere: no such file$/)],
    ],
    [
      'publicKeyFile: rsa.pem\nalgorithms: [ES256]',
      ['2:18: ES256 cannot be checked with a rsa key'],
    ],
    [
      'secretFile: secret\nalgorithms: [HS256]\nrequireExpiry: maybe',
      ['4:18: expected true or false'],
    ],
  ])('refuses %j with the position', async (jwt, expected) => {
    expect(await problems(jwt)).toEqual(expected);
  });
});

describe('looksLikeToken', () => {
  it('tells tokens from passwords', async () => {
    expect(looksLikeToken(await hs256({ sub: 'x' }))).toBe(true);
    expect(looksLikeToken('pass.word.here')).toBe(false);
    expect(looksLikeToken('secret')).toBe(false);
    expect(looksLikeToken('a.b')).toBe(false);
  });
});

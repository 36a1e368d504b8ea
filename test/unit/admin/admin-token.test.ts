import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BearerToken, loadAdminToken } from '../../../src/admin/admin-token.js';
import { ConfigError, loadConfig } from '../../../src/config/load.js';

async function tokenFile(text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'admin-token-')), 'token');
  await writeFile(path, text);
  return path;
}

describe('BearerToken', () => {
  const token = new BearerToken('s3cret-token');

  it('accepts the token as a bearer token, the scheme in any case', () => {
    expect(token.accepts('Bearer s3cret-token')).toBe(true);
    expect(token.accepts('bearer s3cret-token')).toBe(true);
  });

  it.each([
    undefined,
    '',
    'Bearer',
    'Bearer ',
    's3cret-token',
    'Basic s3cret-token',
    'Bearer s3cret-toke',
    'Bearer s3cret-token2',
    'Bearer S3CRET-TOKEN',
  ])('refuses %j', (header) => {
    expect(token.accepts(header)).toBe(false);
  });
});

describe('loadAdminToken', () => {
  it('is undefined (the API off) without token and file', async () => {
    expect(await loadAdminToken({ token: '', tokenFile: '' })).toBeUndefined();
    expect(await loadAdminToken({ token: 't', tokenFile: '' })).toBe('t');
  });

  it('reads the file, one trailing newline removed', async () => {
    expect(await loadAdminToken({ token: '', tokenFile: await tokenFile('abc\n') })).toBe('abc');
    expect(await loadAdminToken({ token: '', tokenFile: await tokenFile('abc\r\n') })).toBe('abc');
  });

  it('refuses a missing or empty file, naming the option and its variable', async () => {
    await expect(loadAdminToken({ token: '', tokenFile: '/nonexistent/token' })).rejects.toThrow(
      /admin\.tokenFile \(env BRIDGE_ADMIN_TOKEN_FILE\): cannot read/,
    );
    await expect(loadAdminToken({ token: '', tokenFile: await tokenFile('\n') })).rejects.toThrow(
      /is empty/,
    );
  });

  it('is a configuration error to set both, naming both options and variables', () => {
    const both = (): unknown =>
      loadConfig({ env: { BRIDGE_ADMIN_TOKEN: 'a', BRIDGE_ADMIN_TOKEN_FILE: '/run/token' } });
    expect(both).toThrow(ConfigError);
    expect(both).toThrow(
      'admin.token (env BRIDGE_ADMIN_TOKEN) and admin.tokenFile (env BRIDGE_ADMIN_TOKEN_FILE) are both set',
    );
  });
});

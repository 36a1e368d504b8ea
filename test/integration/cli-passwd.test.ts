import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { readAuthFile } from '../../src/auth/auth-file.js';
import { hashPassword, verifyPassword } from '../../src/auth/scram-verifier.js';
import type { MappingIssue } from '../../src/rules/errors.js';

/** Runs `mqtt-kafka-bridge passwd ARGS` from source with `input` on stdin (not a terminal). */
function passwd(args: string[], input = '', env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'passwd', ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(input);
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => {
      resolve({ code, stdout, stderr });
    }),
  );
}

describe('mqtt-kafka-bridge passwd', () => {
  it('prints the verifier of the first line of stdin', async () => {
    const run = await passwd(['--iterations', '5000'], 's3cret pass\nignored\n');
    expect(run.code).toBe(0);
    const line = run.stdout.trim();
    expect(line).toMatch(/^SCRAM-SHA-256\$5000:\S+\$\S+:\S+$/);
    expect(await verifyPassword(line, 's3cret pass')).toBe(true);
    expect(run.stdout + run.stderr).not.toContain('s3cret');
  });

  it('uses 100,000 PBKDF2 iterations by default', async () => {
    const run = await passwd([], 'strong\n');
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toMatch(/^SCRAM-SHA-256\$100000:/);
    expect(await verifyPassword(run.stdout.trim(), 'strong')).toBe(true);
  });

  it('refuses an empty password and a weak iteration count', async () => {
    const empty = await passwd([], '\n');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('no password given on stdin');
    const weak = await passwd(['--iterations', '1000'], 'x\n');
    expect(weak.code).toBe(1);
    expect(weak.stderr).toContain('expected an integer from 4096 to 10000000');
  });
});

describe('mqtt-kafka-bridge passwd add | change | remove', () => {
  let folder: string;
  let original: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'bridge-passwd-'));
    // an old file: 4096 iterations, comments, per-user and shared rules
    original = [
      '# Users of the bridge',
      'users:',
      '  # the first device',
      '  sensor-1:',
      `    password: ${await hashPassword('old-secret', { iterations: 4096 })} # rotated yearly`,
      '    acl:',
      '      - allow: publish',
      '        topics: [factory/line-1/#]',
      '',
      '  dashboard:',
      `    password: ${await hashPassword('dash', { iterations: 4096 })}`,
      '',
      '# rules of every user',
      'acl:',
      '  - allow: all # publish, subscribe or all',
      "    topics: ['devices/{username}/#']",
      'anonymous:',
      '  acl:',
      '    - allow: subscribe',
      '      topics: [public/#]',
      '',
    ].join('\n');
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  async function fileWith(name: string, text = original): Promise<string> {
    const path = join(folder, name);
    await writeFile(path, text, { mode: 0o640 });
    return path;
  }

  function usersOf(text: string) {
    const issues: MappingIssue[] = [];
    const content = readAuthFile('auth.yaml', text, issues);
    expect(issues).toEqual([]);
    return content.users;
  }

  it('adds a user (100,000 iterations) and removes it again, leaving the rest as it was', async () => {
    const path = await fileWith('add-remove.yaml');
    const added = await passwd(['--file', path, 'add', 'alice'], 'alice-pw\n');
    expect(added.code).toBe(0);
    expect(added.stderr).toContain('added user "alice"');
    expect(added.stdout + added.stderr).not.toContain('alice-pw');
    const text = await readFile(path, 'utf8');
    const users = usersOf(text);
    expect([...users.keys()]).toEqual(['sensor-1', 'dashboard', 'alice']);
    const alice = parseDocument(text).getIn(['users', 'alice', 'password']) as string;
    expect(alice).toMatch(/^SCRAM-SHA-256\$100000:/);
    expect(await verifyPassword(alice, 'alice-pw')).toBe(true);
    // old verifiers (4096 iterations) are still accepted as they are
    expect(users.get('sensor-1')?.verifier?.iterations).toBe(4096);
    // the new user's two lines go at the end of `users`, the rest is as it was
    expect(
      text.split('\n').filter((line) => !/^ {2}alice:$|^ {4}password: .*\$100000:/.test(line)),
    ).toEqual(original.split('\n'));
    expect((await stat(path)).mode & 0o777).toBe(0o640);

    const removed = await passwd(['-f', path, 'remove', 'alice']);
    expect(removed.code).toBe(0);
    expect(await readFile(path, 'utf8')).toBe(original);
  });

  it('changes a password and nothing else: comments, rules and other users stay', async () => {
    const path = await fileWith('change.yaml');
    const run = await passwd(['--file', path, 'change', 'sensor-1'], 'new-secret\n');
    expect(run.code).toBe(0);
    const text = await readFile(path, 'utf8');
    const before = original.split('\n');
    const after = text.split('\n');
    expect(after.length).toBe(before.length);
    const changed = after.flatMap((line, index) => (line === before[index] ? [] : [index]));
    expect(changed).toEqual([4]);
    expect(after[4]).toMatch(/^ {4}password: SCRAM-SHA-256\$100000:\S+ # rotated yearly$/);
    const users = usersOf(text);
    const verifier = users.get('sensor-1')?.verifier;
    expect(verifier && (await verifyPassword(verifier, 'new-secret'))).toBe(true);
    expect(verifier && (await verifyPassword(verifier, 'old-secret'))).toBe(false);
    expect(users.get('sensor-1')?.acl).toHaveLength(1);
  });

  it('removes a user with its rules', async () => {
    const path = await fileWith('remove.yaml');
    const run = await passwd(['--file', path, 'remove', 'sensor-1']);
    expect(run.code).toBe(0);
    const text = await readFile(path, 'utf8');
    expect([...usersOf(text).keys()]).toEqual(['dashboard']);
    expect(text).not.toContain('factory/line-1');
    expect(text).toContain('# rules of every user');
    expect(text).toContain("topics: ['devices/{username}/#']");
  });

  it('creates a missing file, owner-only, and reads BRIDGE_AUTH_FILE without --file', async () => {
    const path = join(folder, 'new.yaml');
    const run = await passwd(['add', 'first'], 'pw\n', { BRIDGE_AUTH_FILE: path });
    expect(run.code).toBe(0);
    const text = await readFile(path, 'utf8');
    expect([...usersOf(text).keys()]).toEqual(['first']);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('refuses what does not fit, leaving the file untouched', async () => {
    const path = await fileWith('refusals.yaml');
    const cases: [string[], string][] = [
      [['add', 'sensor-1'], `already has a user "sensor-1" (use change)`],
      [['change', 'nobody'], `has no user "nobody" (use add)`],
      [['remove', 'nobody'], `has no user "nobody" (use add)`],
      [['add'], 'add needs a user name'],
      [['rename', 'x'], "'rename' is invalid"],
    ];
    for (const [args, message] of cases) {
      const run = await passwd(['--file', path, ...args], 'pw\n');
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr).toContain(message);
    }
    const noFile = await passwd(['add', 'x'], 'pw\n');
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toContain('add needs --file (or BRIDGE_AUTH_FILE)');
    const noAction = await passwd(['--file', path], 'pw\n');
    expect(noAction.code).toBe(1);
    expect(noAction.stderr).toContain('--file needs an action');
    expect(await readFile(path, 'utf8')).toBe(original);

    const broken = await fileWith('broken.yaml', 'users:\n  a: [\n');
    const run = await passwd(['--file', broken, 'add', 'x'], 'pw\n');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/broken\.yaml:\d+:\d+: /);
    expect(await readFile(broken, 'utf8')).toBe('users:\n  a: [\n');
  });
});

import { describe, expect, it } from 'vitest';
import { readAuthFile } from '../../../src/auth/auth-file.js';
import { formatVerifier } from '../../../src/auth/scram-verifier.js';
import { formatIssue } from '../../../src/rules/errors.js';
import type { MappingIssue } from '../../../src/rules/errors.js';
import { verifierFor } from '../../support/scram-client.js';

const FILE = 'auth.yaml';
const VERIFIER = formatVerifier(verifierFor('pencil', Buffer.from('salt')));

function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

function problems(text: string): string[] {
  const issues: MappingIssue[] = [];
  readAuthFile(FILE, text, issues);
  return issues.sort((a, b) => a.line - b.line || a.column - b.column).map(formatIssue);
}

function read(text: string) {
  const issues: MappingIssue[] = [];
  const content = readAuthFile(FILE, text, issues);
  expect(issues.map(formatIssue)).toEqual([]);
  return content;
}

describe('readAuthFile: valid files', () => {
  it('reads users, their rules, the shared rules and anonymous rules', () => {
    const content = read(
      yaml(
        'users:',
        '  alice:',
        `    password: ${VERIFIER}`,
        '    acl:',
        '      - allow: publish',
        '        topics: a/#',
        '  bob:',
        `    password: '${VERIFIER}'`,
        'acl:',
        '  - allow: all',
        "    topics: ['devices/{username}/#', 'devices/{clientId}/#']",
        'anonymous:',
        '  acl:',
        '    - { allow: subscribe, topics: [public/#] }',
      ),
    );
    expect([...content.users.keys()]).toEqual(['alice', 'bob']);
    expect(content.users.get('alice')?.acl).toEqual([{ allow: 'publish', topics: [['a/#']] }]);
    expect(content.users.get('bob')?.verifier.iterations).toBe(4096);
    expect(content.acl[0]?.topics).toHaveLength(2);
    expect(content.anonymous).toEqual({ acl: [{ allow: 'subscribe', topics: [['public/#']] }] });
  });

  it('reads an empty file and empty sections as nothing allowed', () => {
    expect(read('')).toEqual({ users: new Map(), anonymous: undefined, acl: [] });
    expect(read(yaml('users:', 'acl:'))).toEqual({
      users: new Map(),
      anonymous: undefined,
      acl: [],
    });
  });

  it('takes `anonymous:` alone as anonymous clients allowed with no rules', () => {
    expect(read(yaml('anonymous:')).anonymous).toEqual({ acl: [] });
  });
});

describe('readAuthFile: errors with positions', () => {
  it('reports unknown fields with a suggestion', () => {
    expect(
      problems(
        yaml(
          'userz: {}',
          'users:',
          '  alice:',
          `    pasword: ${VERIFIER}`,
          'acl:',
          '  - alow: publish',
          '    topics: a',
        ),
      ),
    ).toEqual([
      'auth.yaml:1:1: unknown field "userz" (did you mean "users"?)',
      'auth.yaml:4:5: unknown field "pasword" (did you mean "password"?)',
      'auth.yaml:4:5: missing required field "password"',
      'auth.yaml:6:5: unknown field "alow" (did you mean "allow"?)',
      'auth.yaml:6:5: missing required field "allow"',
    ]);
  });

  it('reports invalid verifiers without repeating them', () => {
    const lines = problems(
      yaml(
        'users:',
        '  alice:',
        '    password: pencil',
        '  bob:',
        `    password: ${VERIFIER.replace('$4096:', '$10:')}`,
        '  carol:',
        '    password: 42',
      ),
    );
    expect(lines).toEqual([
      'auth.yaml:3:15: invalid password verifier: expected a SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>; make one with `mqtt-kafka-bridge passwd`',
      'auth.yaml:5:15: invalid password verifier: iterations must be an integer from 4096 to 10000000; make one with `mqtt-kafka-bridge passwd`',
      'auth.yaml:7:15: expected a password verifier',
    ]);
    expect(lines.join('\n')).not.toContain('pencil');
  });

  it('reports bad rules: action, patterns, placeholders at their column', () => {
    expect(
      problems(
        yaml(
          'acl:',
          '  - allow: publsh',
          '    topics: a',
          '  - allow: all',
          '    topics: [ok/#, a/#/b, "x/{clientid}/#"]',
          '  - allow: subscribe',
          '    topics: []',
          '  - allow: publish',
          '    topics: { a: b }',
          '  - publish',
        ),
      ),
    ).toEqual([
      'auth.yaml:2:12: expected publish, subscribe or all (did you mean "publish"?)',
      'auth.yaml:5:20: "#" is not the last level of topic filter "a/#/b"',
      'auth.yaml:5:30: unknown placeholder "{clientid}" (did you mean "{clientId}"?)',
      'auth.yaml:7:13: expected at least one topic pattern',
      'auth.yaml:9:13: expected a topic pattern (quote a value that starts with "{")',
      'auth.yaml:10:5: expected a map',
    ]);
  });

  it('refuses {username} in anonymous rules', () => {
    expect(
      problems(
        yaml('anonymous:', '  acl:', '    - allow: all', "      topics: ['u/{username}/#']"),
      ),
    ).toEqual(['auth.yaml:4:16: anonymous clients have no {username}']);
  });

  it('reports YAML syntax errors and duplicate users', () => {
    expect(problems(yaml('users:', '  alice: [', ''))[0]).toMatch(/^auth\.yaml:\d+:\d+: /);
    expect(
      problems(
        yaml('users:', `  a: { password: '${VERIFIER}' }`, `  a: { password: '${VERIFIER}' }`),
      ),
    ).toEqual(['auth.yaml:3:3: Map keys must be unique']);
  });

  it('reports a file that is not a map, and users that are not a map', () => {
    expect(problems('- a\n')).toEqual(['auth.yaml:1:1: expected a map']);
    expect(problems(yaml('users: [alice]'))).toEqual(['auth.yaml:1:8: expected a map']);
  });
});

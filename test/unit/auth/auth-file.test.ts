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

const EMPTY = {
  users: new Map(),
  anonymous: undefined,
  acl: [],
  clientIds: undefined,
  clientIdsRuled: false,
  shareGroupsRuled: false,
};

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
    expect(content.users.get('alice')?.acl).toEqual([
      { effect: 'allow', action: 'publish', topics: [['a/#']] },
    ]);
    expect(content.users.get('bob')?.verifier?.iterations).toBe(4096);
    expect(content.acl[0]?.topics).toHaveLength(2);
    expect(content.anonymous).toEqual({
      acl: [{ effect: 'allow', action: 'subscribe', topics: [['public/#']] }],
    });
  });

  it('reads an empty file and empty sections as nothing allowed', () => {
    expect(read('')).toEqual(EMPTY);
    expect(read(yaml('users:', 'acl:'))).toEqual(EMPTY);
  });

  it('takes `anonymous:` alone as anonymous clients allowed with no rules', () => {
    expect(read(yaml('anonymous:')).anonymous).toEqual({ acl: [], clientIds: undefined });
  });

  it('reads deny rules in the order written', () => {
    const content = read(
      yaml(
        'acl:',
        '  - deny: subscribe',
        '    topics: [secret/#]',
        '  - allow: all',
        "    topics: '#'",
        '  - deny: all',
        '    topics: [x]',
      ),
    );
    expect(content.acl.map((rule) => `${rule.effect} ${rule.action}`)).toEqual([
      'deny subscribe',
      'allow all',
      'deny all',
    ]);
  });

  it('reads client id patterns: per user, shared, anonymous', () => {
    const content = read(
      yaml(
        'users:',
        '  alice:',
        `    password: ${VERIFIER}`,
        "    clientIds: ['{username}-*', fixed]",
        'clientIds: "{username}"',
        'anonymous:',
        '  clientIds: [guest-*]',
      ),
    );
    expect(content.clientIdsRuled).toBe(true);
    expect(content.users.get('alice')?.clientIds).toEqual([
      [{ placeholder: 'username' }, '-', { any: true }],
      ['fixed'],
    ]);
    expect(content.clientIds).toEqual([[{ placeholder: 'username' }]]);
    expect(content.anonymous?.clientIds).toEqual([['guest-', { any: true }]]);
    expect(read(yaml('acl:')).clientIdsRuled).toBe(false);
  });

  it('reads share group patterns on subscribe rules', () => {
    const content = read(
      yaml(
        'acl:',
        '  - allow: subscribe',
        '    topics: [jobs/#]',
        "    shareGroups: ['backend-*']",
      ),
    );
    expect(content.shareGroupsRuled).toBe(true);
    expect(content.acl[0]?.shareGroups).toEqual([['backend-', { any: true }]]);
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
      'auth.yaml:6:5: unknown field "alow" (did you mean "allow"?)',
      'auth.yaml:6:5: missing "allow" or "deny"',
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

  it('reports bad deny rules, client id and share group patterns at their position', () => {
    expect(
      problems(
        yaml(
          'users:',
          '  alice:',
          `    password: ${VERIFIER}`,
          "    clientIds: ['{clientId}-x']",
          'acl:',
          '  - allow: all',
          '    deny: all',
          '    topics: a',
          '  - deny: publsh',
          '    topics: a',
          '  - allow: publish',
          '    topics: a',
          '    shareGroups: [g]',
          '  - topics: a',
          'anonymous:',
          "  clientIds: ['{username}']",
        ),
      ),
    ).toEqual([
      'auth.yaml:4:18: unknown placeholder "{clientId}" ({username} or {claims.<name>})',
      'auth.yaml:7:5: a rule either allows or denies: "allow" and "deny" together',
      'auth.yaml:9:11: expected publish, subscribe or all (did you mean "publish"?)',
      'auth.yaml:13:5: "shareGroups" is about subscriptions: write "allow: subscribe"',
      'auth.yaml:14:5: missing "allow" or "deny"',
      'auth.yaml:16:15: anonymous clients have no {username}',
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

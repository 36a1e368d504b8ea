import { describe, expect, it } from 'vitest';
import { expandPattern, parsePattern } from '../../../src/auth/acl.js';
import type { PatternTemplate } from '../../../src/auth/acl.js';
import { aclPermissions } from '../../../src/auth/permissions.js';

function template(text: string): PatternTemplate {
  const parsed = parsePattern(text);
  if (!parsed.ok) throw new Error(parsed.issues.map((issue) => issue.message).join('; '));
  return parsed.value;
}

const alice = { username: 'alice', clientId: 'dev-1' };

describe('parsePattern', () => {
  it('splits text and placeholders', () => {
    expect(template('devices/{username}/x-{clientId}/#')).toEqual([
      'devices/',
      { placeholder: 'username' },
      '/x-',
      { placeholder: 'clientId' },
      '/#',
    ]);
    expect(template('#')).toEqual(['#']);
  });

  it.each([
    ['a/{clientid}/#', 2, 'unknown placeholder "{clientid}" (did you mean "{clientId}"?)'],
    ['a/{user}', 2, 'unknown placeholder "{user}" ({username} or {clientId})'],
    ['a/{clientId', 2, '"{" outside a placeholder'],
    ['a}/b', 1, '"}" outside a placeholder'],
    ['a/#/b', 0, '"#" is not the last level of topic filter "a/#/b"'],
    ['a/{username}+', 0, '"+" does not occupy a whole level of topic filter "a/x+"'],
    ['', 0, 'empty topic filter'],
    [
      '$share/g/a/#',
      0,
      'an ACL pattern names topics, not a shared subscription: write the filter alone',
    ],
  ])('refuses %s', (text, offset, message) => {
    expect(parsePattern(text)).toEqual({ ok: false, issues: [{ offset, message }] });
  });
});

describe('expandPattern', () => {
  it('fills in the connection values', () => {
    expect(expandPattern(template('d/{username}/{clientId}/#'), alice)).toBe('d/alice/dev-1/#');
    expect(expandPattern(template('d/x{clientId}'), alice)).toBe('d/xdev-1');
  });

  it.each([
    ['a missing value', { username: undefined, clientId: 'c' }],
    ['an empty value', { username: '', clientId: 'c' }],
    ['a value with /', { username: 'a/b', clientId: 'c' }],
    ['a value with +', { username: '+', clientId: 'c' }],
    ['a value with #', { username: '#', clientId: 'c' }],
  ])('gives nothing for %s', (_, values) => {
    expect(expandPattern(template('d/{username}/#'), values)).toBeUndefined();
  });

  it('gives nothing for a $ value that would start the pattern, only there', () => {
    const values = { username: '$SYS', clientId: 'c' };
    expect(expandPattern(template('{username}/#'), values)).toBeUndefined();
    expect(expandPattern(template('d/{username}/#'), values)).toBe('d/$SYS/#');
  });
});

describe('aclPermissions', () => {
  const rules = [
    { allow: 'publish' as const, topics: [template('devices/{clientId}/up/#')] },
    { allow: 'subscribe' as const, topics: [template('devices/{clientId}/down/#')] },
    { allow: 'all' as const, topics: [template('users/{username}/#'), template('public/+')] },
  ];

  it('allows each action only through its rules', () => {
    const permissions = aclPermissions(rules, alice);
    expect(permissions.canPublish('devices/dev-1/up/temp')).toBe(true);
    expect(permissions.canPublish('devices/dev-2/up/temp')).toBe(false);
    expect(permissions.canPublish('devices/dev-1/down/cmd')).toBe(false);
    expect(permissions.canSubscribe('devices/dev-1/down/#')).toBe(true);
    expect(permissions.canSubscribe('devices/dev-1/up/#')).toBe(false);
    expect(permissions.canSubscribe('devices/+/down/#')).toBe(false);
    expect(permissions.canPublish('users/alice/x')).toBe(true);
    expect(permissions.canSubscribe('users/alice/#')).toBe(true);
    expect(permissions.canSubscribe('public/+')).toBe(true);
    expect(permissions.canSubscribe('public/#')).toBe(false);
  });

  it('judges shared subscriptions on their filter, and refuses invalid filters', () => {
    const permissions = aclPermissions(rules, alice);
    expect(permissions.canSubscribe('$share/g/devices/dev-1/down/x')).toBe(true);
    expect(permissions.canSubscribe('$queue/public/news')).toBe(true);
    expect(permissions.canSubscribe('$share/g/devices/dev-2/down/x')).toBe(false);
    expect(permissions.canSubscribe('public/#/x')).toBe(false);
    expect(permissions.canSubscribe('')).toBe(false);
  });

  it('does not let a value with wildcards widen a rule', () => {
    const sneaky = aclPermissions(rules, { username: '#', clientId: '+' });
    expect(sneaky.canPublish('users/bob/x')).toBe(false);
    expect(sneaky.canPublish('devices/dev-1/up/x')).toBe(false);
    expect(sneaky.canSubscribe('devices/+/down/#')).toBe(false);
    expect(sneaky.canPublish('public/x')).toBe(true);
  });
});

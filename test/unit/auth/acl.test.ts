import { describe, expect, it } from 'vitest';
import {
  expandPattern,
  matchesName,
  parseNamePattern,
  parsePattern,
} from '../../../src/auth/acl.js';
import type {
  AclAction,
  AclRule,
  NamePattern,
  PatternTemplate,
  PlaceholderKind,
} from '../../../src/auth/acl.js';
import { aclPermissions } from '../../../src/auth/permissions.js';
import { intersectFilters } from '../../../src/auth/topic-patterns.js';

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
    ['a/{user}', 2, 'unknown placeholder "{user}" ({username}, {clientId} or {claims.<name>})'],
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
    {
      effect: 'allow' as const,
      action: 'publish' as const,
      topics: [template('devices/{clientId}/up/#')],
    },
    {
      effect: 'allow' as const,
      action: 'subscribe' as const,
      topics: [template('devices/{clientId}/down/#')],
    },
    {
      effect: 'allow' as const,
      action: 'all' as const,
      topics: [template('users/{username}/#'), template('public/+')],
    },
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

describe('aclPermissions: deny rules, first match wins', () => {
  const rule = (effect: 'allow' | 'deny', action: AclAction, ...topics: string[]): AclRule => ({
    effect,
    action,
    topics: topics.map(template),
  });

  it('lets the first matching rule decide a publish, and denies what nothing matches', () => {
    const permissions = aclPermissions(
      [rule('deny', 'publish', 'a/secret/#'), rule('allow', 'all', 'a/#')],
      alice,
    );
    expect(permissions.canPublish('a/x')).toBe(true);
    expect(permissions.canPublish('a/secret/x')).toBe(false);
    expect(permissions.canPublish('b/x')).toBe(false);
    // a deny after a matching allow changes nothing
    const late = aclPermissions(
      [rule('allow', 'all', 'a/#'), rule('deny', 'publish', 'a/secret/#')],
      alice,
    );
    expect(late.canPublish('a/secret/x')).toBe(true);
  });

  it('refuses a subscription a deny rule overlaps, unless an earlier allow covers the overlap', () => {
    const permissions = aclPermissions(
      [
        rule('allow', 'subscribe', 'secret/public/#'),
        rule('deny', 'all', 'secret/#'),
        rule('allow', 'all', '#'),
      ],
      alice,
    );
    expect(permissions.canSubscribe('#')).toBe(false);
    expect(permissions.canSubscribe('+/x')).toBe(false);
    expect(permissions.canSubscribe('secret/#')).toBe(false);
    expect(permissions.canSubscribe('secret/x')).toBe(false);
    expect(permissions.canSubscribe('other/#')).toBe(true);
    expect(permissions.canSubscribe('secret/public/+')).toBe(true);
    expect(permissions.canSubscribe('$SYS/#')).toBe(false);
    expect(permissions.canReceive('secret/x')).toBe(false);
    expect(permissions.canReceive('secret/public/x')).toBe(true);
    expect(permissions.canReceive('other/x')).toBe(true);
  });

  it('keeps deny rules to their action', () => {
    const permissions = aclPermissions(
      [rule('deny', 'subscribe', 'x/#'), rule('allow', 'all', '#')],
      alice,
    );
    expect(permissions.canPublish('x/1')).toBe(true);
    expect(permissions.canSubscribe('x/1')).toBe(false);
    expect(permissions.canSubscribe('y/#')).toBe(true);
  });

  it('expands placeholders in deny rules; an unusable value makes the deny wider, not absent', () => {
    const rules = [rule('deny', 'all', 'users/{username}/private/#'), rule('allow', 'all', '#')];
    expect(aclPermissions(rules, alice).canPublish('users/alice/private/x')).toBe(false);
    expect(aclPermissions(rules, alice).canPublish('users/bob/private/x')).toBe(true);
    const sneaky = aclPermissions(rules, { username: 'a/b', clientId: 'c' });
    expect(sneaky.canPublish('users/a/b/private/x')).toBe(false);
    expect(sneaky.canPublish('users/x')).toBe(false);
    expect(sneaky.canPublish('other/x')).toBe(true);
    const partial = [rule('deny', 'publish', 'd/x-{clientId}/y'), rule('allow', 'all', '#')];
    expect(aclPermissions(partial, { username: 'u', clientId: '+' }).canPublish('d/q')).toBe(false);
    expect(aclPermissions(partial, { username: 'u', clientId: '' }).canPublish('e')).toBe(true);
  });
});

describe('aclPermissions: share groups', () => {
  const subscribe = (effect: 'allow' | 'deny', topics: string[], groups?: string[]): AclRule => ({
    effect,
    action: 'subscribe',
    topics: topics.map(template),
    ...(groups ? { shareGroups: groups.map((group) => namePattern(group)) } : {}),
  });

  it('judges $share on the filter only when no rule names groups', () => {
    const permissions = aclPermissions([subscribe('allow', ['jobs/#'])], alice);
    expect(permissions.canSubscribe('$share/anything/jobs/#')).toBe(true);
  });

  it('needs a rule naming the group once rules name groups', () => {
    const rules = [
      subscribe('deny', ['jobs/#'], ['backend-admin']),
      subscribe('allow', ['jobs/#'], ['backend-*', '{username}-workers']),
      subscribe('allow', ['jobs/#']),
    ];
    const permissions = aclPermissions(rules, alice, { shareGroupsRuled: true });
    expect(permissions.canSubscribe('jobs/#')).toBe(true);
    expect(permissions.canSubscribe('$share/backend-1/jobs/#')).toBe(true);
    expect(permissions.canSubscribe('$share/alice-workers/jobs/+')).toBe(true);
    expect(permissions.canSubscribe('$share/bob-workers/jobs/+')).toBe(false);
    expect(permissions.canSubscribe('$share/backend-admin/jobs/#')).toBe(false);
    expect(permissions.canSubscribe('$share/other/jobs/#')).toBe(false);
    expect(permissions.canSubscribe('$queue/jobs/#')).toBe(false);
    expect(permissions.canReceive('jobs/1', 'backend-1')).toBe(true);
    expect(permissions.canReceive('jobs/1', 'other')).toBe(false);
    // group rules give no publish rights
    expect(permissions.canPublish('jobs/1')).toBe(false);
  });
});

describe('intersectFilters', () => {
  it.each([
    ['#', 'a/b', 'a/b'],
    ['a/#', 'a', 'a'],
    ['a/+/#', '+/b', 'a/b'],
    ['a/+', 'a/#', 'a/+'],
    ['+/+', 'a/b/c', undefined],
    ['a/b', 'a/c', undefined],
    ['#', '$SYS/#', undefined],
    ['+/x', '$SYS/x', undefined],
    ['$SYS/#', '$SYS/+', '$SYS/+'],
  ])('%s and %s give %s', (a, b, both) => {
    expect(intersectFilters(a, b)).toBe(both);
    expect(intersectFilters(b, a)).toBe(both);
  });
});

describe('name patterns', () => {
  it('matches * as any characters and placeholders literally', () => {
    const patterns = ['{username}', '{username}-*', 'fixed.id'].map((text: string) =>
      namePattern(text, ['username']),
    );
    expect(matchesName(patterns, alice, 'alice')).toBe(true);
    expect(matchesName(patterns, alice, 'alice-2')).toBe(true);
    expect(matchesName(patterns, alice, 'alice2')).toBe(false);
    expect(matchesName(patterns, alice, 'fixed.id')).toBe(true);
    expect(matchesName(patterns, alice, 'fixedxid')).toBe(false);
    expect(matchesName(patterns, { username: 'a*', clientId: 'x' }, 'abc')).toBe(false);
    expect(matchesName(patterns, { username: undefined, clientId: 'x' }, 'x')).toBe(false);
  });

  it('refuses unknown placeholders and empty patterns', () => {
    expect(parseNamePattern('{clientId}', ['username'])).toEqual({
      ok: false,
      issues: [{ offset: 0, message: 'unknown placeholder "{clientId}" ({username})' }],
    });
    expect(parseNamePattern('', ['username']).ok).toBe(false);
  });
});

function namePattern(
  text: string,
  known: PlaceholderKind[] = ['username', 'clientId'],
): NamePattern {
  const parsed = parseNamePattern(text, known);
  if (!parsed.ok) throw new Error(parsed.issues.map((issue) => issue.message).join('; '));
  return parsed.value;
}

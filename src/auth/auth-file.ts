import { isSeq } from 'yaml';
import type { MappingIssue } from '../rules/errors.js';
import { didYouMean } from '../rules/suggest.js';
import { isOneOf, readTopLevelMap } from '../rules/yaml-nodes.js';
import type { NodeReader } from '../rules/yaml-nodes.js';
import type { Field, Value } from '../rules/yaml-nodes.js';
import { ACL_ACTIONS, mentions, parsePattern } from './acl.js';
import type { AclRule, PatternTemplate } from './acl.js';
import { parseVerifier } from './scram-verifier.js';
import type { ScramVerifier } from './scram-verifier.js';

/*
 * The users and ACL file, checked on the YAML nodes so that every problem has a position:
 *
 *   users:                 name → { password: <verifier>, acl: [rules] }
 *   anonymous:             present: clients without a user name may connect, with its `acl`
 *   acl:                   rules of every user (added to each user's own)
 *
 * A rule is { allow: publish | subscribe | all, topics: pattern or [patterns] }.
 */

const FILE_FIELDS = ['users', 'anonymous', 'acl'] as const;
const USER_FIELDS = ['password', 'acl'] as const;
const ANONYMOUS_FIELDS = ['acl'] as const;
const RULE_FIELDS = ['allow', 'topics'] as const;

/** One user of the file. */
export interface AuthUser {
  verifier: ScramVerifier;
  /** The user's own rules, without the shared ones. */
  acl: AclRule[];
}

/** The content of a valid users and ACL file. */
export interface AuthFileContent {
  users: Map<string, AuthUser>;
  /** Undefined: connections without a user name are refused. */
  anonymous: { acl: AclRule[] } | undefined;
  /** Rules of every user. */
  acl: AclRule[];
}

/** Reads a users and ACL file; problems are appended to `issues` (then the result is unusable). */
export function readAuthFile(file: string, text: string, issues: MappingIssue[]): AuthFileContent {
  const content: AuthFileContent = { users: new Map(), anonymous: undefined, acl: [] };
  const top = readTopLevelMap(file, text, issues);
  if (top === undefined) return content;
  const { reader, root } = top;
  const fields = reader.fields(root, FILE_FIELDS);
  if (fields.users && !reader.isEmpty(fields.users)) {
    const users = reader.map(fields.users);
    for (const field of users ? reader.entries(users) : []) {
      const user = readUser(reader, field);
      if (user !== undefined) content.users.set(field.name, user);
    }
  }
  if (fields.anonymous) content.anonymous = readAnonymous(reader, fields.anonymous);
  if (fields.acl) content.acl = readAcl(reader, fields.acl, 'user');
  return content;
}

function readUser(reader: NodeReader, field: Field): AuthUser | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const fields = reader.fields(map, USER_FIELDS, ['password']);
  const password = fields.password && reader.string(fields.password, 'a password verifier');
  const acl = fields.acl ? readAcl(reader, fields.acl, 'user') : [];
  if (password === undefined) return undefined;
  const verifier = parseVerifier(password.text);
  if ('problem' in verifier) {
    const advice = 'make one with `mqtt-kafka-bridge passwd`';
    reader.report(password.node, `invalid password verifier: ${verifier.problem}; ${advice}`);
    return undefined;
  }
  return { verifier, acl };
}

/** `anonymous:` alone allows anonymous connections with no rules. */
function readAnonymous(reader: NodeReader, field: Field): { acl: AclRule[] } {
  if (reader.isEmpty(field)) return { acl: [] };
  const map = reader.map(field);
  const fields = map ? reader.fields(map, ANONYMOUS_FIELDS) : {};
  return { acl: fields.acl ? readAcl(reader, fields.acl, 'anonymous') : [] };
}

/** A list of rules; `acl:` with nothing under it is an empty list. */
function readAcl(reader: NodeReader, field: Field, who: 'user' | 'anonymous'): AclRule[] {
  if (reader.isEmpty(field)) return [];
  return (reader.list(field) ?? []).flatMap((item) => readRule(reader, item, who) ?? []);
}

function readRule(reader: NodeReader, item: Value, who: 'user' | 'anonymous'): AclRule | undefined {
  const map = reader.map(item);
  if (map === undefined) return undefined;
  const fields = reader.fields(map, RULE_FIELDS, ['allow', 'topics']);
  const allowText = fields.allow && reader.string(fields.allow, 'publish, subscribe or all');
  let allow: AclRule['allow'] | undefined;
  if (allowText && isOneOf(allowText.text, ACL_ACTIONS)) {
    allow = allowText.text;
  } else if (allowText) {
    const hint = didYouMean(allowText.text, ACL_ACTIONS);
    reader.report(allowText.node, `expected publish, subscribe or all${hint}`);
  }
  const topics = fields.topics && readTopics(reader, fields.topics, who);
  return allow && topics ? { allow, topics } : undefined;
}

/** `topics`: one pattern or a non-empty list of them. */
function readTopics(
  reader: NodeReader,
  field: Field,
  who: 'user' | 'anonymous',
): PatternTemplate[] | undefined {
  const before = reader.issueCount;
  const items = isSeq(field.node) ? (reader.list(field) ?? []) : [field];
  if (items.length === 0) reader.report(reader.at(field), 'expected at least one topic pattern');
  const patterns: PatternTemplate[] = [];
  for (const item of items) {
    const text = reader.string(item, 'a topic pattern');
    if (text === undefined) continue;
    const parsed = parsePattern(text.text);
    if (!parsed.ok) {
      reader.reportIn(text, parsed.issues);
    } else if (who === 'anonymous' && mentions(parsed.value, 'username')) {
      reader.report(text.node, 'anonymous clients have no {username}');
    } else {
      patterns.push(parsed.value);
    }
  }
  return reader.issueCount > before ? undefined : patterns;
}

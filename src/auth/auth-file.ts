import { isScalar, isSeq } from 'yaml';
import type { MappingIssue } from '../rules/errors.js';
import type { SourcePosition } from '../rules/types.js';
import { didYouMean } from '../rules/suggest.js';
import { isOneOf, readTopLevelMap } from '../rules/yaml-nodes.js';
import type { NodeReader } from '../rules/yaml-nodes.js';
import type { Field, Value } from '../rules/yaml-nodes.js';
import { ACL_ACTIONS, mentions, nameMentions, parseNamePattern, parsePattern } from './acl.js';
import type { AclRule, NamePattern, PatternTemplate, PlaceholderKind } from './acl.js';
import { JWT_ALGORITHMS, JWT_KEY_FIELDS } from './jwt.js';
import type { JwtAlgorithm, JwtSettings } from './jwt.js';
import { parseVerifier } from './scram-verifier.js';
import type { ScramVerifier } from './scram-verifier.js';

/*
 * The users and ACL file, checked on the YAML nodes so that every problem has a position:
 *
 *   users:                 name → { password: <verifier>, acl: [rules], clientIds: [patterns] }
 *                          (without a password: the user proves who it is by token or
 *                          certificate only)
 *   anonymous:             present: clients without a user name may connect, with its `acl`
 *                          and `clientIds`
 *   acl:                   rules of every user (after each user's own)
 *   clientIds:             client id patterns of every user (added to each user's own)
 *   jwt:                   JSON Web Tokens accepted in the password field (see jwt.ts)
 *
 * A rule is { allow | deny: publish | subscribe | all, topics: pattern or [patterns],
 * shareGroups: name pattern or [patterns] (subscribe rules only) }.
 */

const FILE_FIELDS = ['users', 'anonymous', 'acl', 'clientIds', 'jwt'] as const;
const JWT_FIELDS = [
  ...JWT_KEY_FIELDS,
  'algorithms',
  'usernameClaim',
  'issuer',
  'audience',
  'requireExpiry',
] as const;
const USER_FIELDS = ['password', 'acl', 'clientIds'] as const;
const ANONYMOUS_FIELDS = ['acl', 'clientIds'] as const;
const RULE_FIELDS = ['allow', 'deny', 'topics', 'shareGroups'] as const;

/** One user of the file. */
export interface AuthUser {
  /** Undefined: no password; the user connects with a token or a certificate. */
  verifier: ScramVerifier | undefined;
  /** The user's own rules, without the shared ones. */
  acl: AclRule[];
  /** The user's own client id patterns, without the shared ones; undefined: none written. */
  clientIds: NamePattern[] | undefined;
}

/** Who may connect without a user name, and what they may do. */
export interface AnonymousAccess {
  acl: AclRule[];
  /** Undefined: none written. */
  clientIds: NamePattern[] | undefined;
}

/** The content of a valid users and ACL file. */
export interface AuthFileContent {
  users: Map<string, AuthUser>;
  /** Undefined: connections without a user name are refused. */
  anonymous: AnonymousAccess | undefined;
  /** Rules of every user. */
  acl: AclRule[];
  /** Client id patterns of every user; undefined: none written. */
  clientIds: NamePattern[] | undefined;
  /**
   * Some `clientIds` is written: every client id must then match a pattern of its identity
   * (a user's own and the shared ones; anonymous clients' own).
   */
  clientIdsRuled: boolean;
  /** Some rule names `shareGroups`: joining a share group then needs a rule naming it. */
  shareGroupsRuled: boolean;
  /** JSON Web Tokens accepted as passwords; undefined: none. */
  jwt: (JwtSettings & { keyIssueAt: SourcePosition }) | undefined;
}

/** Who the rules and patterns are for: anonymous clients have no `{username}`. */
type Who = 'user' | 'anonymous';

/** Reads a users and ACL file; problems are appended to `issues` (then the result is unusable). */
export function readAuthFile(file: string, text: string, issues: MappingIssue[]): AuthFileContent {
  const content: AuthFileContent = {
    users: new Map(),
    anonymous: undefined,
    acl: [],
    clientIds: undefined,
    clientIdsRuled: false,
    shareGroupsRuled: false,
    jwt: undefined,
  };
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
  if (fields.clientIds) content.clientIds = readClientIds(reader, fields.clientIds, 'user');
  if (fields.jwt) content.jwt = readJwt(reader, fields.jwt);
  const users = [...content.users.values()];
  const everyAcl = [
    content.acl,
    content.anonymous?.acl ?? [],
    ...users.map((user) => user.acl),
  ].flat();
  content.shareGroupsRuled = everyAcl.some((rule) => rule.shareGroups !== undefined);
  content.clientIdsRuled =
    content.clientIds !== undefined ||
    content.anonymous?.clientIds !== undefined ||
    users.some((user) => user.clientIds !== undefined);
  return content;
}

function readUser(reader: NodeReader, field: Field): AuthUser | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const fields = reader.fields(map, USER_FIELDS);
  const password = fields.password && reader.string(fields.password, 'a password verifier');
  const acl = fields.acl ? readAcl(reader, fields.acl, 'user') : [];
  const clientIds = fields.clientIds && readClientIds(reader, fields.clientIds, 'user');
  if (fields.password === undefined) return { verifier: undefined, acl, clientIds };
  if (password === undefined) return undefined;
  const verifier = parseVerifier(password.text);
  if ('problem' in verifier) {
    const advice = 'make one with `mqtt-kafka-bridge passwd`';
    reader.report(password.node, `invalid password verifier: ${verifier.problem}; ${advice}`);
    return undefined;
  }
  return { verifier, acl, clientIds };
}

/** `jwt:` one key field, the algorithms, and optional checks. */
function readJwt(
  reader: NodeReader,
  field: Field,
): (JwtSettings & { keyIssueAt: SourcePosition }) | undefined {
  const map = reader.map(field);
  if (map === undefined) return undefined;
  const fields = reader.fields(map, JWT_FIELDS, ['algorithms']);
  const keyFields = JWT_KEY_FIELDS.flatMap((name) => fields[name] ?? []);
  if (keyFields.length !== 1) {
    const names = JWT_KEY_FIELDS.join(', ');
    reader.report(keyFields[1]?.key ?? map, `expected exactly one of ${names}`);
    return undefined;
  }
  const [keyField] = keyFields as [Field];
  const keyFile = reader.string(keyField, 'a file path');
  const algorithms = fields.algorithms && readAlgorithms(reader, fields.algorithms);
  const text = (name: 'usernameClaim' | 'issuer' | 'audience'): string | undefined => {
    const value = fields[name];
    return value && reader.string(value)?.text;
  };
  let requireExpiry = true;
  if (fields.requireExpiry) {
    const { node } = fields.requireExpiry;
    if (isScalar(node) && typeof node.value === 'boolean') requireExpiry = node.value;
    else reader.report(reader.at(fields.requireExpiry), 'expected true or false');
  }
  if (keyFile === undefined || algorithms === undefined) return undefined;
  return {
    keyField: keyField.name as JwtSettings['keyField'],
    keyFile: keyFile.text,
    keyIssueAt: reader.position(keyFile.node),
    algorithms,
    usernameClaim: text('usernameClaim') ?? 'sub',
    issuer: text('issuer'),
    audience: text('audience'),
    requireExpiry,
  };
}

function readAlgorithms(reader: NodeReader, field: Field): JwtAlgorithm[] | undefined {
  const items = reader.list(field);
  if (items === undefined) return undefined;
  if (items.length === 0) reader.report(reader.at(field), 'expected at least one algorithm');
  const algorithms: JwtAlgorithm[] = [];
  for (const item of items) {
    const text = reader.string(item, 'an algorithm name');
    if (text === undefined) continue;
    if (isOneOf(text.text, JWT_ALGORITHMS)) {
      algorithms.push(text.text);
    } else {
      const hint = didYouMean(text.text, JWT_ALGORITHMS);
      reader.report(text.node, `unknown algorithm "${text.text}"${hint}`);
    }
  }
  return algorithms.length === items.length && items.length > 0 ? algorithms : undefined;
}

/** `anonymous:` alone allows anonymous connections with no rules. */
function readAnonymous(reader: NodeReader, field: Field): AnonymousAccess {
  if (reader.isEmpty(field)) return { acl: [], clientIds: undefined };
  const map = reader.map(field);
  const fields = map ? reader.fields(map, ANONYMOUS_FIELDS) : {};
  return {
    acl: fields.acl ? readAcl(reader, fields.acl, 'anonymous') : [],
    clientIds: fields.clientIds && readClientIds(reader, fields.clientIds, 'anonymous'),
  };
}

/** A list of rules; `acl:` with nothing under it is an empty list. */
function readAcl(reader: NodeReader, field: Field, who: Who): AclRule[] {
  if (reader.isEmpty(field)) return [];
  return (reader.list(field) ?? []).flatMap((item) => readRule(reader, item, who) ?? []);
}

function readRule(reader: NodeReader, item: Value, who: Who): AclRule | undefined {
  const map = reader.map(item);
  if (map === undefined) return undefined;
  const fields = reader.fields(map, RULE_FIELDS, ['topics']);
  if (fields.allow && fields.deny) {
    reader.report(fields.deny.key, 'a rule either allows or denies: "allow" and "deny" together');
    return undefined;
  }
  const effect = fields.deny ? 'deny' : 'allow';
  const actionField = fields.allow ?? fields.deny;
  if (actionField === undefined) {
    reader.report(map, 'missing "allow" or "deny"');
  }
  const actionText = actionField && reader.string(actionField, 'publish, subscribe or all');
  let action: AclRule['action'] | undefined;
  if (actionText && isOneOf(actionText.text, ACL_ACTIONS)) {
    action = actionText.text;
  } else if (actionText) {
    const hint = didYouMean(actionText.text, ACL_ACTIONS);
    reader.report(actionText.node, `expected publish, subscribe or all${hint}`);
  }
  const topics = fields.topics && readTopics(reader, fields.topics, who);
  let shareGroups: NamePattern[] | undefined;
  if (fields.shareGroups) {
    shareGroups = readNamePatterns(reader, fields.shareGroups, who, 'share group', [
      'username',
      'clientId',
      'claims',
    ]);
    if (action !== undefined && action !== 'subscribe') {
      reader.report(
        fields.shareGroups.key,
        `"shareGroups" is about subscriptions: write "${effect}: subscribe"`,
      );
      return undefined;
    }
    if (shareGroups === undefined) return undefined;
  }
  if (action === undefined || topics === undefined) return undefined;
  return { effect, action, topics, ...(shareGroups ? { shareGroups } : {}) };
}

/** `clientIds`: one client id pattern or a list of them (an empty list allows no id). */
function readClientIds(reader: NodeReader, field: Field, who: Who): NamePattern[] | undefined {
  if (isSeq(field.node) && field.node.items.length === 0) return [];
  return readNamePatterns(reader, field, who, 'client id', ['username', 'claims']);
}

/** One name pattern or a list of them; placeholders other than `known` are reported. */
function readNamePatterns(
  reader: NodeReader,
  field: Field,
  who: Who,
  what: string,
  known: readonly PlaceholderKind[],
): NamePattern[] | undefined {
  const before = reader.issueCount;
  const items = isSeq(field.node) ? (reader.list(field) ?? []) : [field];
  if (items.length === 0) reader.report(reader.at(field), `expected at least one ${what} pattern`);
  const patterns: NamePattern[] = [];
  for (const item of items) {
    const text = reader.string(item, `a ${what} pattern`);
    if (text === undefined) continue;
    const parsed = parseNamePattern(text.text, known);
    if (!parsed.ok) {
      reader.reportIn(text, parsed.issues);
    } else if (who === 'anonymous' && anonymousProblem(parsed.value, nameMentions)) {
      reader.report(text.node, anonymousProblem(parsed.value, nameMentions) as string);
    } else {
      patterns.push(parsed.value);
    }
  }
  return reader.issueCount > before ? undefined : patterns;
}

/** `topics`: one pattern or a non-empty list of them. */
function readTopics(reader: NodeReader, field: Field, who: Who): PatternTemplate[] | undefined {
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
    } else if (who === 'anonymous' && anonymousProblem(parsed.value, mentions)) {
      reader.report(text.node, anonymousProblem(parsed.value, mentions) as string);
    } else {
      patterns.push(parsed.value);
    }
  }
  return reader.issueCount > before ? undefined : patterns;
}

/** Anonymous clients have neither a user name nor a token. */
function anonymousProblem<P>(
  pattern: P,
  mentionsKind: (pattern: P, kind: PlaceholderKind) => boolean,
): string | undefined {
  if (mentionsKind(pattern, 'username')) return 'anonymous clients have no {username}';
  if (mentionsKind(pattern, 'claims')) return 'anonymous clients have no token {claims.…}';
  return undefined;
}

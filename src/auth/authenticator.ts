import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { BridgeError } from '../errors.js';
import { formatIssue } from '../rules/errors.js';
import type { MappingIssue } from '../rules/errors.js';
import { matchesName } from './acl.js';
import { readAuthFile } from './auth-file.js';
import type { AuthFileContent } from './auth-file.js';
import type { Identity } from './identity.js';
import { loadJwtVerifier, looksLikeToken } from './jwt.js';
import type { JwtVerifier } from './jwt.js';
import { ALLOW_ALL, aclPermissions } from './permissions.js';
import type { Permissions } from './permissions.js';
import { ScramServerConversation } from './scram-server.js';
import { MIN_ITERATIONS, verifyPassword } from './scram-verifier.js';
import type { ScramVerifier } from './scram-verifier.js';

/** Who a connection is, and what it may do. */
export interface Principal {
  identity: Identity;
  clientId: string;
  permissions: Permissions;
}

/**
 * The outcome of authentication. `bad-credentials`: unknown user, wrong password or invalid
 * token (CONNACK 0x86, 3.1.1: 0x04); `not-authorized`: no user name and anonymous clients are
 * not allowed, or a token where none is accepted any more (0x87, 3.1.1: 0x05). `problem`: more
 * for the log, never for the client.
 */
export type AuthResult =
  | { ok: true; principal: Principal }
  | { ok: false; reason: 'bad-credentials' | 'not-authorized'; problem?: string };

/** A users and ACL file with the keys it names loaded. */
export interface AuthPolicy extends AuthFileContent {
  /** Checks the tokens of the file's `jwt` section; undefined without one. */
  tokens: JwtVerifier | undefined;
}

/** The users and ACL file cannot be loaded. `message` lists every issue, one per line. */
export class AuthFileError extends BridgeError {
  readonly issues: MappingIssue[];

  constructor(issues: MappingIssue[]) {
    super('CONFIG_INVALID', issues.map(formatIssue).join('\n'));
    this.issues = issues;
  }
}

/**
 * Loads the users and ACL file at `path` (option `auth.file`). The empty path turns
 * authentication off: every client may connect, publish and subscribe. Throws an
 * AuthFileError listing every problem with its position.
 */
export async function loadAuth(path: string): Promise<Authenticator> {
  if (path === '') return new Authenticator(undefined);
  return new Authenticator(await readAuthContent(path));
}

/**
 * Reads and checks the users and ACL file at `path`, and loads the key its `jwt` section names;
 * throws an AuthFileError.
 */
export async function readAuthContent(path: string): Promise<AuthPolicy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    const reason = missing ? 'no such file' : (error as Error).message;
    throw new AuthFileError([
      { file: path, line: 0, column: 0, message: `cannot read: ${reason}` },
    ]);
  }
  const issues: MappingIssue[] = [];
  const content = readAuthFile(path, text, issues);
  if (issues.length > 0) throw new AuthFileError(inOrder(issues));
  if (content.jwt === undefined) return { ...content, tokens: undefined };
  const tokens = await loadJwtVerifier(content.jwt, path);
  if ('problem' in tokens) {
    throw new AuthFileError([{ ...content.jwt.keyIssueAt, message: tokens.problem }]);
  }
  return { ...content, tokens };
}

/**
 * Checks who connects and builds their permissions, from the content of a users and ACL file.
 * The content is swapped in one step by `replace()` (a reload): every check after it reads the
 * new file, none reads a mix.
 */
export class Authenticator {
  /** Key of the salts made up for unknown SCRAM users. */
  private readonly secret = randomBytes(32);
  private fakeIterations: number;
  /** Checked in place of an unknown user's, so that a wrong name costs what a wrong password does. */
  private decoy: ScramVerifier;
  private content: AuthPolicy | undefined;
  private readonly replacedListeners: Array<() => void> = [];

  /** `content` undefined: authentication off. */
  constructor(content: AuthPolicy | undefined) {
    this.content = content;
    this.fakeIterations = mostCommonIterations(content);
    this.decoy = decoyFor(this.fakeIterations);
  }

  /** Whether a users and ACL file is in force. */
  get enabled(): boolean {
    return this.content !== undefined;
  }

  /**
   * Puts a new version of the users and ACL file in force, at once for every later check, then
   * tells the `onReplaced` listeners (the broker judges every client again).
   */
  replace(content: AuthPolicy): void {
    this.content = content;
    const iterations = mostCommonIterations(content);
    if (iterations !== this.fakeIterations) {
      this.fakeIterations = iterations;
      this.decoy = decoyFor(iterations);
    }
    for (const listener of this.replacedListeners) listener();
  }

  /**
   * Adds a listener called, in the same synchronous step as `replace()`, once a new version is
   * in force: the broker judges its clients again there, so no packet is handled in between.
   * Listeners must not throw.
   */
  onReplaced(listener: () => void): void {
    this.replacedListeners.push(listener);
  }

  /**
   * Checks a CONNECT's user name and password. A password shaped like a JSON Web Token is
   * checked as one when the file has a `jwt` section: the token's user name claim is the user
   * name, and a user name sent as well must equal it (MQTT 5 may send a password alone). Without
   * a user name or token the password is ignored and the connection is anonymous.
   */
  async authenticatePassword(
    username: string | undefined,
    password: string | Buffer | undefined,
    clientId: string,
  ): Promise<AuthResult> {
    const { content } = this;
    if (content === undefined) return this.authorize({ username, proof: 'none' }, clientId);
    const text = typeof password === 'string' ? password : password?.toString('utf8');
    if (content.tokens !== undefined && text !== undefined && looksLikeToken(text)) {
      const check = await content.tokens.verify(text);
      if (!check.ok) return { ok: false, reason: 'bad-credentials', problem: check.problem };
      const { token } = check;
      if (username !== undefined && username !== token.username) {
        const problem = `user name "${username}" is not the token's "${token.username}"`;
        return { ok: false, reason: 'bad-credentials', problem };
      }
      const identity: Identity = {
        username: token.username,
        proof: 'token',
        claims: token.claims,
        ...(token.expiresAt !== undefined && { expiresAt: token.expiresAt }),
      };
      return this.authorize(identity, clientId);
    }
    if (username === undefined) return this.authorize({ username, proof: 'none' }, clientId);
    const verifier = content.users.get(username)?.verifier;
    const valid = await verifyPassword(verifier ?? this.decoy, password ?? '');
    if (verifier === undefined || password === undefined || !valid) {
      return { ok: false, reason: 'bad-credentials' };
    }
    return this.authorize({ username, proof: 'password' }, clientId);
  }

  /**
   * The principal of a client whose identity is established: by password, SCRAM, token or
   * certificate, or anonymous (no user name). A user proved by password must be in the file; one
   * proved by token or certificate need not be (it then has the shared rules only), and a token
   * counts only while the file accepts tokens. Its client id is not judged here: see
   * `allowsClientId`.
   */
  authorize(identity: Identity, clientId: string): AuthResult {
    const { content } = this;
    if (content === undefined) {
      return { ok: true, principal: { identity, clientId, permissions: ALLOW_ALL } };
    }
    const options = { shareGroupsRuled: content.shareGroupsRuled };
    const { username } = identity;
    if (username === undefined) {
      if (content.anonymous === undefined) return { ok: false, reason: 'not-authorized' };
      const permissions = aclPermissions(content.anonymous.acl, { username, clientId }, options);
      return { ok: true, principal: { identity, clientId, permissions } };
    }
    if (identity.proof === 'token' && content.tokens === undefined) {
      return { ok: false, reason: 'not-authorized', problem: 'tokens are not accepted any more' };
    }
    const user = content.users.get(username);
    if (user === undefined && identity.proof === 'password') {
      return { ok: false, reason: 'bad-credentials' };
    }
    const rules = [...(user?.acl ?? []), ...content.acl];
    const values = { username, clientId, claims: identity.claims };
    const permissions = aclPermissions(rules, values, options);
    return { ok: true, principal: { identity, clientId, permissions } };
  }

  /**
   * Whether this identity may use this client id: always when no `clientIds` is written in the
   * file; otherwise when it matches one of the user's own or the shared patterns (anonymous
   * clients: the `anonymous` ones). A client id the server assigned is always allowed: it is
   * new and nobody else's.
   */
  allowsClientId(identity: Identity, clientId: string, assigned = false): boolean {
    const { content } = this;
    if (content === undefined || !content.clientIdsRuled || assigned) return true;
    const { username } = identity;
    const values = { username, clientId, claims: identity.claims };
    if (username === undefined) {
      return matchesName(content.anonymous?.clientIds ?? [], values, clientId);
    }
    const user = content.users.get(username);
    if (user === undefined && identity.proof === 'password') return false;
    const patterns = [...(user?.clientIds ?? []), ...(content.clientIds ?? [])];
    return matchesName(patterns, values, clientId);
  }

  /** A new SCRAM-SHA-256 exchange (MQTT 5 authentication method "SCRAM-SHA-256") over the users. */
  scram(): ScramServerConversation {
    return new ScramServerConversation({
      lookup: (username) => this.content?.users.get(username)?.verifier,
      secret: this.secret,
      fakeIterations: this.fakeIterations,
    });
  }
}

function decoyFor(iterations: number): ScramVerifier {
  return {
    iterations,
    salt: randomBytes(16),
    storedKey: randomBytes(32),
    serverKey: randomBytes(32),
  };
}

/** The iteration count most users' verifiers have: what an unknown user is told. */
function mostCommonIterations(content: AuthFileContent | undefined): number {
  const counts = new Map<number, number>();
  for (const { verifier } of content?.users.values() ?? []) {
    if (verifier === undefined) continue;
    counts.set(verifier.iterations, (counts.get(verifier.iterations) ?? 0) + 1);
  }
  let best = MIN_ITERATIONS;
  let bestCount = 0;
  for (const [iterations, count] of counts) {
    if (count > bestCount) [best, bestCount] = [iterations, count];
  }
  return best;
}

/** Issues by position, without repeats (aliased nodes are read twice). */
function inOrder(issues: MappingIssue[]): MappingIssue[] {
  const unique = new Map(issues.map((issue) => [formatIssue(issue), issue]));
  return [...unique.values()].sort((a, b) => a.line - b.line || a.column - b.column);
}

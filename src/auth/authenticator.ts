import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { BridgeError } from '../errors.js';
import { formatIssue } from '../rules/errors.js';
import type { MappingIssue } from '../rules/errors.js';
import { readAuthFile } from './auth-file.js';
import type { AuthFileContent } from './auth-file.js';
import { ALLOW_ALL, aclPermissions } from './permissions.js';
import type { Permissions } from './permissions.js';
import { ScramServerConversation } from './scram-server.js';
import { MIN_ITERATIONS, verifyPassword } from './scram-verifier.js';
import type { ScramVerifier } from './scram-verifier.js';

/** Who a connection is, and what it may do. */
export interface Principal {
  /** Undefined for an anonymous connection. */
  username: string | undefined;
  clientId: string;
  permissions: Permissions;
}

/**
 * The outcome of authentication. `bad-credentials`: unknown user or wrong password (CONNACK
 * 0x86, 3.1.1: 0x04); `not-authorized`: no user name and anonymous clients are not allowed
 * (0x87, 3.1.1: 0x05).
 */
export type AuthResult =
  { ok: true; principal: Principal } | { ok: false; reason: 'bad-credentials' | 'not-authorized' };

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
  return new Authenticator(content);
}

/** Checks who connects and builds their permissions, from the content of a users and ACL file. */
export class Authenticator {
  /** Key of the salts made up for unknown SCRAM users. */
  private readonly secret = randomBytes(32);
  private readonly fakeIterations: number;
  /** Checked in place of an unknown user's, so that a wrong name costs what a wrong password does. */
  private readonly decoy: ScramVerifier;

  /** `content` undefined: authentication off. */
  constructor(private readonly content: AuthFileContent | undefined) {
    this.fakeIterations = mostCommonIterations(content);
    this.decoy = {
      iterations: this.fakeIterations,
      salt: randomBytes(16),
      storedKey: randomBytes(32),
      serverKey: randomBytes(32),
    };
  }

  /** Whether a users and ACL file is in force. */
  get enabled(): boolean {
    return this.content !== undefined;
  }

  /**
   * Checks a CONNECT's user name and password. Without a user name, the password is ignored and
   * the connection is anonymous.
   */
  async authenticatePassword(
    username: string | undefined,
    password: string | Buffer | undefined,
    clientId: string,
  ): Promise<AuthResult> {
    if (this.content === undefined || username === undefined) {
      return this.authorize(username, clientId);
    }
    const verifier = this.content.users.get(username)?.verifier;
    const valid = await verifyPassword(verifier ?? this.decoy, password ?? '');
    if (verifier === undefined || password === undefined || !valid) {
      return { ok: false, reason: 'bad-credentials' };
    }
    return this.authorize(username, clientId);
  }

  /**
   * The principal of a client whose identity is established: after a SCRAM exchange (with the
   * user name it returned), or for an anonymous client (username undefined).
   */
  authorize(username: string | undefined, clientId: string): AuthResult {
    const { content } = this;
    if (content === undefined) {
      return { ok: true, principal: { username, clientId, permissions: ALLOW_ALL } };
    }
    if (username === undefined) {
      if (content.anonymous === undefined) return { ok: false, reason: 'not-authorized' };
      const permissions = aclPermissions(content.anonymous.acl, { username, clientId });
      return { ok: true, principal: { username, clientId, permissions } };
    }
    const user = content.users.get(username);
    if (user === undefined) return { ok: false, reason: 'bad-credentials' };
    const permissions = aclPermissions([...user.acl, ...content.acl], { username, clientId });
    return { ok: true, principal: { username, clientId, permissions } };
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

/** The iteration count most users' verifiers have: what an unknown user is told. */
function mostCommonIterations(content: AuthFileContent | undefined): number {
  const counts = new Map<number, number>();
  for (const { verifier } of content?.users.values() ?? []) {
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

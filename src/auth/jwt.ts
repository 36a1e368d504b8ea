import { X509Certificate, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute, dirname, resolve } from 'node:path';
import { createLocalJWKSet, errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';

/*
 * JSON Web Tokens in the MQTT password field (RFC 7519, verified with jose). The users and ACL
 * file names the key and the rules:
 *
 *   jwt:
 *     secretFile | publicKeyFile | jwksFile: path (relative to the users file)
 *     algorithms: [HS256 | RS256 | ES256 | …]   required: never taken from the token
 *     usernameClaim: sub                        the claim that is the user name
 *     issuer, audience                          checked when written
 *     requireExpiry: true                       a token without `exp` is refused
 */

export const JWT_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

export const JWT_KEY_FIELDS = ['secretFile', 'publicKeyFile', 'jwksFile'] as const;
export type JwtKeyField = (typeof JWT_KEY_FIELDS)[number];

/** The `jwt` section of a users and ACL file, as written. */
export interface JwtSettings {
  keyField: JwtKeyField;
  /** As written; resolved against the users file's folder. */
  keyFile: string;
  algorithms: JwtAlgorithm[];
  usernameClaim: string;
  issuer: string | undefined;
  audience: string | undefined;
  requireExpiry: boolean;
}

/** A verified token: who it names, its claims, and until when it is valid. */
export interface VerifiedToken {
  username: string;
  claims: Readonly<Record<string, unknown>>;
  /** Milliseconds since the epoch; undefined: the token has no `exp`. */
  expiresAt: number | undefined;
}

export type TokenCheck = { ok: true; token: VerifiedToken } | { ok: false; problem: string };

/** RFC 7518 §3.2: an HMAC key at least as long as the hash. */
const MIN_SECRET_BYTES: Partial<Record<JwtAlgorithm, number>> = { HS256: 32, HS384: 48, HS512: 64 };

/** Checks tokens against one key (or key set). Build with `loadJwtVerifier`. */
export class JwtVerifier {
  readonly #key: KeyObject | Uint8Array | JWTVerifyGetKey;
  readonly #settings: JwtSettings;

  constructor(key: KeyObject | Uint8Array | JWTVerifyGetKey, settings: JwtSettings) {
    this.#key = key;
    this.#settings = settings;
  }

  /**
   * Verifies a token: signature with an allowed algorithm, `exp` and `nbf`, issuer and
   * audience when configured, and a non-empty string user name claim.
   */
  async verify(token: string): Promise<TokenCheck> {
    const { algorithms, issuer, audience, requireExpiry, usernameClaim } = this.#settings;
    let payload: JWTPayload;
    try {
      const options = {
        algorithms,
        ...(issuer !== undefined && { issuer }),
        ...(audience !== undefined && { audience }),
        ...(requireExpiry && { requiredClaims: ['exp'] }),
      };
      // one call per key kind: jose's overloads tell a key from a key resolver
      const key = this.#key;
      ({ payload } =
        typeof key === 'function'
          ? await jwtVerify(token, key, options)
          : await jwtVerify(token, key, options));
    } catch (error) {
      return { ok: false, problem: tokenProblem(error) };
    }
    const username = payload[usernameClaim];
    if (typeof username !== 'string' || username === '') {
      return { ok: false, problem: `no "${usernameClaim}" claim with a user name` };
    }
    const expiresAt = payload.exp === undefined ? undefined : payload.exp * 1000;
    return { ok: true, token: { username, claims: payload, expiresAt } };
  }
}

/**
 * Whether a password is shaped like a JSON Web Token (three base64url parts, the first a JSON
 * header with `alg`): such a password is checked as a token, any other as a password.
 */
export function looksLikeToken(password: string): boolean {
  const parts = password.split('.');
  if (parts.length !== 3 || !parts.every((part) => /^[\w-]*$/u.test(part))) return false;
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null && 'alg' in header;
  } catch {
    return false;
  }
}

/**
 * Reads the key file named by the settings and checks it fits the algorithms. Returns the
 * verifier, or a problem to report at the key field.
 */
export async function loadJwtVerifier(
  settings: JwtSettings,
  authFile: string,
): Promise<JwtVerifier | { problem: string }> {
  const path = isAbsolute(settings.keyFile)
    ? settings.keyFile
    : resolve(dirname(authFile), settings.keyFile);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    return {
      problem: `cannot read ${path}: ${missing ? 'no such file' : (error as Error).message}`,
    };
  }
  try {
    const key = keyFrom(settings, bytes);
    if ('problem' in key) return key;
    return new JwtVerifier(key.key, settings);
  } catch (error) {
    return { problem: `${settings.keyField} ${path}: ${(error as Error).message}` };
  }
}

function keyFrom(
  settings: JwtSettings,
  bytes: Buffer,
): { key: KeyObject | Uint8Array | JWTVerifyGetKey } | { problem: string } {
  const { keyField, algorithms } = settings;
  const hmac = algorithms.filter((algorithm) => algorithm.startsWith('HS'));
  if (keyField === 'secretFile') {
    if (hmac.length !== algorithms.length) {
      return { problem: 'a secretFile goes with HS256, HS384 or HS512 only' };
    }
    // a trailing line break is the file's, not the secret's
    const secret = bytes.subarray(0, bytes.length - trailingNewline(bytes));
    for (const algorithm of hmac) {
      const min = MIN_SECRET_BYTES[algorithm] ?? 0;
      if (secret.length < min)
        return { problem: `${algorithm} needs a secret of ${min} bytes or more` };
    }
    return { key: new Uint8Array(secret) };
  }
  if (hmac.length > 0) return { problem: `${hmac.join(', ')} need a secretFile` };
  if (keyField === 'jwksFile') {
    return {
      key: createLocalJWKSet(
        JSON.parse(bytes.toString('utf8')) as Parameters<typeof createLocalJWKSet>[0],
      ),
    };
  }
  const text = bytes.toString('utf8');
  const key = text.includes('CERTIFICATE')
    ? new X509Certificate(text).publicKey
    : createPublicKey(text);
  const families = KEY_FAMILIES[key.asymmetricKeyType ?? ''] ?? [];
  const unfit = algorithms.filter((algorithm) => !families.some((f) => algorithm.startsWith(f)));
  if (unfit.length > 0) {
    return { problem: `${unfit.join(', ')} cannot be checked with a ${key.asymmetricKeyType} key` };
  }
  return { key };
}

/** Algorithm name prefixes each public key type can check. */
const KEY_FAMILIES: Record<string, string[]> = {
  rsa: ['RS', 'PS'],
  'rsa-pss': ['PS'],
  ec: ['ES'],
  ed25519: ['EdDSA'],
};

function trailingNewline(bytes: Buffer): number {
  if (bytes.at(-1) !== 0x0a) return 0;
  return bytes.at(-2) === 0x0d ? 2 : 1;
}

/** A short reason for the log; the client only learns that its credentials were refused. */
function tokenProblem(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWTClaimValidationFailed)
    return `claim "${error.claim}": ${error.reason}`;
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature does not verify';
  if (error instanceof errors.JWKSNoMatchingKey) return 'no key of the key set matches';
  return (error as Error).message;
}

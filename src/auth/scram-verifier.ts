import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { ConcurrencyLimit } from './concurrency-limit.js';

/*
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) password verifiers, stored as PostgreSQL stores them:
 *
 *   SCRAM-SHA-256$<iterations>:<salt, base64>$<StoredKey, base64>:<ServerKey, base64>
 *
 * The password itself is never stored. The verifier checks a plain MQTT password and serves a
 * SCRAM conversation (MQTT 5 enhanced authentication) alike.
 */

const pbkdf2Async = promisify(pbkdf2);

/** The verifier prefix, also the SCRAM mechanism (and MQTT 5 authentication method) name. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** RFC 7677 §4: at least 4096 iterations (still accepted in users files). */
export const MIN_ITERATIONS = 4096;
/**
 * Iterations of new verifiers: 4096 (RFC 7677's minimum, from 2015) is cheap to brute-force
 * from a leaked file today; SCRAM lets the server choose any count. About 50 ms per check.
 */
export const DEFAULT_ITERATIONS = 100_000;
/** Upper bound, so one verifier cannot make every login attempt cost seconds of CPU. */
export const MAX_ITERATIONS = 10_000_000;
const SALT_BYTES = 16;
const KEY_BYTES = 32;

/** A parsed SCRAM-SHA-256 verifier. */
export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/**
 * PBKDF2 computations at once: half the libuv thread pool (UV_THREADPOOL_SIZE, default 4), so
 * that a crowd of clients logging in cannot take every thread from file and DNS work (Kafka
 * connections resolve their brokers there); the others wait their turn.
 */
export const pbkdf2Limit = new ConcurrencyLimit(
  Math.floor((Number(process.env.UV_THREADPOOL_SIZE) || 4) / 2),
);

/** PBKDF2-HMAC-SHA-256 of the password (RFC 5802 Hi()), on the libuv thread pool. */
function saltedPassword(
  password: string | Buffer,
  salt: Buffer,
  iterations: number,
): Promise<Buffer> {
  return pbkdf2Limit.run(() => pbkdf2Async(password, salt, iterations, KEY_BYTES, 'sha256'));
}

/** HMAC-SHA-256 (RFC 5802 HMAC()). */
export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** SHA-256 (RFC 5802 H()). */
export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** ClientKey = HMAC(SaltedPassword, "Client Key"). */
function clientKeyOf(salted: Buffer): Buffer {
  return hmac(salted, 'Client Key');
}

/** A new verifier for `password` with a random 16-byte salt; DEFAULT_ITERATIONS unless told. */
export async function hashPassword(
  password: string | Buffer,
  options: { iterations?: number } = {},
): Promise<string> {
  const iterations = options.iterations ?? DEFAULT_ITERATIONS;
  const problem = iterationsProblem(iterations);
  if (problem !== undefined) throw new RangeError(problem);
  const salt = randomBytes(SALT_BYTES);
  const salted = await saltedPassword(password, salt, iterations);
  return formatVerifier({
    iterations,
    salt,
    storedKey: sha256(clientKeyOf(salted)),
    serverKey: hmac(salted, 'Server Key'),
  });
}

/**
 * Whether `password` is the one `verifier` was made from: SaltedPassword → ClientKey →
 * StoredKey, compared in constant time. A malformed verifier matches no password.
 */
export async function verifyPassword(
  verifier: string | ScramVerifier,
  password: string | Buffer,
): Promise<boolean> {
  const parsed = typeof verifier === 'string' ? parseVerifier(verifier) : verifier;
  if ('problem' in parsed) return false;
  const salted = await saltedPassword(password, parsed.salt, parsed.iterations);
  return timingSafeEqual(sha256(clientKeyOf(salted)), parsed.storedKey);
}

/** The verifier text of a parsed verifier. */
export function formatVerifier(verifier: ScramVerifier): string {
  const { iterations, salt, storedKey, serverKey } = verifier;
  const b64 = (bytes: Buffer): string => bytes.toString('base64');
  return `${SCRAM_SHA_256}$${iterations}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}

/** Parses a verifier; says what is wrong without repeating the (secret) text. */
export function parseVerifier(text: string): ScramVerifier | { problem: string } {
  const parts = text.split('$');
  if (parts.length !== 3 || parts[0] !== SCRAM_SHA_256) {
    return { problem: `expected a ${SCRAM_SHA_256}$<iterations>:<salt>$<StoredKey>:<ServerKey>` };
  }
  const [params = '', keys = ''] = parts.slice(1);
  const [iterationText = '', saltText, ...moreParams] = params.split(':');
  const [storedText = '', serverText, ...moreKeys] = keys.split(':');
  if (saltText === undefined || serverText === undefined || moreParams.length + moreKeys.length) {
    return { problem: 'expected <iterations>:<salt> and <StoredKey>:<ServerKey>' };
  }
  const iterations = /^[1-9]\d{0,9}$/.test(iterationText) ? Number(iterationText) : NaN;
  const problem = iterationsProblem(iterations);
  if (problem !== undefined) return { problem };
  const salt = base64(saltText);
  if (salt === undefined || salt.length === 0) return { problem: 'the salt is not base64' };
  const storedKey = base64(storedText);
  const serverKey = base64(serverText);
  if (storedKey?.length !== KEY_BYTES || serverKey?.length !== KEY_BYTES) {
    return { problem: `StoredKey and ServerKey must be ${KEY_BYTES} bytes in base64` };
  }
  return { iterations, salt, storedKey, serverKey };
}

function iterationsProblem(iterations: number): string | undefined {
  if (
    Number.isInteger(iterations) &&
    iterations >= MIN_ITERATIONS &&
    iterations <= MAX_ITERATIONS
  ) {
    return undefined;
  }
  return `iterations must be an integer from ${MIN_ITERATIONS} to ${MAX_ITERATIONS}`;
}

/** Strict base64 (padded, standard alphabet); undefined when `text` is not. */
export function base64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

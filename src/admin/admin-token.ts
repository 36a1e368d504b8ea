import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError, type BridgeConfig } from '../config/load.js';

/**
 * The admin API's token: `admin.token`, or the content of `admin.tokenFile` read now (a trailing
 * newline removed, as secrets mounted from files often end with one). Undefined: neither is set,
 * the API is off. (loadConfig refuses both set.)
 */
export async function loadAdminToken(admin: BridgeConfig['admin']): Promise<string | undefined> {
  if (admin.tokenFile === '') return admin.token === '' ? undefined : admin.token;
  const option = 'admin.tokenFile (env BRIDGE_ADMIN_TOKEN_FILE)';
  let text: string;
  try {
    text = await readFile(admin.tokenFile, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `${option}: cannot read "${admin.tokenFile}": ${(error as Error).message}`,
      { cause: error },
    );
  }
  const token = text.replace(/\r?\n$/, '');
  // an empty token would be one anybody can send
  if (token === '') throw new ConfigError(`${option}: "${admin.tokenFile}" is empty`);
  return token;
}

const BEARER = /^Bearer +(\S+) *$/i;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Checks `Authorization: Bearer <token>` headers against the configured token. */
export class BearerToken {
  readonly #digest: Buffer;

  constructor(token: string) {
    this.#digest = sha256(token);
  }

  accepts(authorization: string | undefined): boolean {
    const given = BEARER.exec(authorization ?? '')?.[1];
    // digests of equal length, compared in constant time: how long the check takes tells
    // nothing of how much of a guess was right, nor of the token's length
    const same = timingSafeEqual(sha256(given ?? ''), this.#digest);
    return given !== undefined && same;
  }
}

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { MIN_ITERATIONS, base64, hmac, sha256 } from './scram-verifier.js';
import type { ScramVerifier } from './scram-verifier.js';

/*
 * The server side of one SCRAM-SHA-256 exchange (RFC 5802, RFC 7677), independent of how the
 * messages travel (for MQTT 5: CONNECT and AUTH packets' Authentication Data).
 *
 *   client-first  n,,n=user,r=<client nonce>
 *   server-first  r=<client nonce><server nonce>,s=<salt>,i=<iterations>
 *   client-final  c=biws,r=<client nonce><server nonce>,p=<ClientProof>
 *   server-final  v=<ServerSignature>
 *
 * Channel binding is not supported: a client asking for it (`p=`) is refused; one that supports
 * it but sees the server does not (`y`) is served, as RFC 5802 §6 says.
 */

/** The user's verifier by user name, or undefined when there is no such user. */
export type VerifierLookup = (username: string) => ScramVerifier | undefined;

/** Why an exchange failed: RFC 5802 server-error-values (a server-final may say `e=<value>`). */
export type ScramError =
  | 'invalid-encoding'
  | 'extensions-not-supported'
  | 'invalid-proof'
  | 'channel-bindings-dont-match'
  | 'channel-binding-not-supported'
  | 'invalid-username-encoding'
  | 'other-error';

export interface ScramServerOptions {
  lookup: VerifierLookup;
  /** Key of the salts made up for unknown users, so that the same name gets the same salt. */
  secret: Buffer;
  /** Iterations announced to unknown users (best: the ones most users have). */
  fakeIterations?: number;
  /** The server's part of the nonce; default: 18 random bytes in base64. */
  serverNonce?: () => string;
}

interface Started {
  username: string;
  verifier: ScramVerifier | undefined;
  gs2Header: string;
  nonce: string;
  clientFirstBare: string;
  serverFirst: string;
}

const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * One SCRAM-SHA-256 exchange, server side: `start` with the client-first message, then `finish`
 * with the client-final message. Any failure ends the exchange. An unknown user gets a
 * plausible server-first (a salt derived from the name) and fails only at `finish`, like a
 * wrong password, so user names cannot be probed.
 */
export class ScramServerConversation {
  private state: 'new' | Started | 'ended' = 'new';

  constructor(private readonly options: ScramServerOptions) {}

  /** Reads the client-first message; answers the server-first message. */
  start(clientFirstMessage: Buffer): { serverFirst: Buffer } | { error: ScramError } {
    if (this.state !== 'new') return this.fail('other-error');
    this.state = 'ended';
    const text = decode(clientFirstMessage);
    if (text === undefined) return this.fail('invalid-encoding');
    const gs2 = /^([^,]*),([^,]*),/.exec(text);
    if (gs2 === null) return this.fail('invalid-encoding');
    const [gs2Header, flag = '', authzid = ''] = gs2;
    if (flag.startsWith('p=')) return this.fail('channel-binding-not-supported');
    if (flag !== 'n' && flag !== 'y') return this.fail('invalid-encoding');

    const clientFirstBare = text.slice(gs2Header.length);
    // A mandatory extension (m=) the server does not know must fail the exchange.
    if (clientFirstBare.startsWith('m=')) return this.fail('extensions-not-supported');
    const [userAttribute = '', nonceAttribute = ''] = clientFirstBare.split(',');
    if (!userAttribute.startsWith('n=')) return this.fail('invalid-encoding');
    const username = decodeSaslName(userAttribute.slice(2));
    if (username === undefined) return this.fail('invalid-username-encoding');
    // An authorization identity other than the user's own is not supported.
    if (authzid !== '') {
      if (!authzid.startsWith('a=')) return this.fail('invalid-encoding');
      if (decodeSaslName(authzid.slice(2)) !== username) return this.fail('other-error');
    }
    const clientNonce = nonceAttribute.startsWith('r=') ? nonceAttribute.slice(2) : '';
    if (!PRINTABLE_NONCE.test(clientNonce)) return this.fail('invalid-encoding');

    const verifier = this.options.lookup(username);
    const salt = verifier?.salt ?? hmac(this.options.secret, `salt:${username}`).subarray(0, 16);
    const iterations = verifier?.iterations ?? this.options.fakeIterations ?? MIN_ITERATIONS;
    const nonce = clientNonce + (this.options.serverNonce ?? randomNonce)();
    const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
    this.state = { username, verifier, gs2Header, nonce, clientFirstBare, serverFirst };
    return { serverFirst: Buffer.from(serverFirst) };
  }

  /** Checks the client-final message's proof; answers the server-final message. */
  finish(
    clientFinalMessage: Buffer,
  ): { serverFinal: Buffer; username: string } | { error: ScramError } {
    const started = this.state;
    if (typeof started === 'string') return this.fail('other-error');
    this.state = 'ended';
    const text = decode(clientFinalMessage);
    const proofAt = text?.lastIndexOf(',p=') ?? -1;
    if (text === undefined || proofAt === -1) return this.fail('invalid-encoding');
    const withoutProof = text.slice(0, proofAt);
    const [binding = '', nonce = ''] = withoutProof.split(',');
    if (!binding.startsWith('c=') || !nonce.startsWith('r=')) return this.fail('invalid-encoding');
    const channelBinding = base64(binding.slice(2));
    if (channelBinding?.equals(Buffer.from(started.gs2Header)) !== true) {
      return this.fail('channel-bindings-dont-match');
    }
    if (nonce.slice(2) !== started.nonce) return this.fail('other-error');
    const proof = base64(text.slice(proofAt + 3));
    if (proof?.length !== 32) return this.fail('invalid-encoding');

    const { verifier, clientFirstBare, serverFirst, username } = started;
    if (verifier === undefined) return this.fail('invalid-proof');
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = hmac(verifier.storedKey, authMessage);
    const clientKey = Buffer.alloc(32);
    for (let index = 0; index < 32; index++) {
      clientKey[index] = (proof[index] ?? 0) ^ (clientSignature[index] ?? 0);
    }
    if (!timingSafeEqual(sha256(clientKey), verifier.storedKey)) return this.fail('invalid-proof');
    const serverSignature = hmac(verifier.serverKey, authMessage);
    return { serverFinal: Buffer.from(`v=${serverSignature.toString('base64')}`), username };
  }

  private fail(error: ScramError): { error: ScramError } {
    this.state = 'ended';
    return { error };
  }
}

function randomNonce(): string {
  return randomBytes(18).toString('base64');
}

function decode(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A SCRAM saslname: `=2C` is ",", `=3D` is "=", any other "=" or a "," is an error. */
function decodeSaslName(text: string): string | undefined {
  if (text === '' || /=(?!2C|3D)/.test(text) || text.includes(',')) return undefined;
  return text.replaceAll('=2C', ',').replaceAll('=3D', '=');
}

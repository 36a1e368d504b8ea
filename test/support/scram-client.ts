import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import type { ScramVerifier } from '../../src/auth/scram-verifier.js';

/*
 * The client side of SCRAM-SHA-256 (RFC 5802), written out here from the RFC so that the
 * server is tested against an implementation that shares none of its code.
 */

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

function salted(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(password, salt, iterations, 32, 'sha256');
}

/** The verifier a server stores for `password`. */
export function verifierFor(password: string, salt: Buffer, iterations = 4096): ScramVerifier {
  const saltedPassword = salted(password, salt, iterations);
  return {
    iterations,
    salt,
    storedKey: sha256(hmac(saltedPassword, 'Client Key')),
    serverKey: hmac(saltedPassword, 'Server Key'),
  };
}

/** One client exchange: `first()`, then `final(serverFirst)`, then check the server's final. */
export class ScramClient {
  readonly bare: string;
  private expectedServerFinal = '';

  constructor(
    readonly username: string,
    private readonly password: string,
    readonly clientNonce = 'fyko+d2lbbFgONRv9qkxdawL',
    private readonly gs2Header = 'n,,',
  ) {
    const saslName = username.replaceAll('=', '=3D').replaceAll(',', '=2C');
    this.bare = `n=${saslName},r=${clientNonce}`;
  }

  first(): Buffer {
    return Buffer.from(this.gs2Header + this.bare);
  }

  /** The client-final message; `change` may alter its parts before the proof is computed. */
  final(serverFirst: Buffer, change: { binding?: string; nonce?: string } = {}): Buffer {
    const text = serverFirst.toString();
    const fields = new Map(text.split(',').map((part) => [part.slice(0, 1), part.slice(2)]));
    const nonce = change.nonce ?? fields.get('r') ?? '';
    const binding = change.binding ?? Buffer.from(this.gs2Header).toString('base64');
    const saltedPassword = salted(
      this.password,
      Buffer.from(fields.get('s') ?? '', 'base64'),
      Number(fields.get('i')),
    );
    const clientKey = hmac(saltedPassword, 'Client Key');
    const withoutProof = `c=${binding},r=${nonce}`;
    const authMessage = `${this.bare},${text},${withoutProof}`;
    const signature = hmac(sha256(clientKey), authMessage);
    const proof = Buffer.from(clientKey.map((byte, index) => byte ^ (signature[index] ?? 0)));
    const serverSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    this.expectedServerFinal = `v=${serverSignature.toString('base64')}`;
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** The server-final message that proves the server knows the verifier. */
  get serverFinal(): string {
    return this.expectedServerFinal;
  }
}

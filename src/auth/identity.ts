/** How a client proved who it is. */
export type Proof =
  /** Nothing proved: anonymous, or any user name while authentication is off. */
  | 'none'
  /** A password or a SCRAM exchange, against the users file. */
  | 'password'
  /** A JSON Web Token in the password field. */
  | 'token'
  /** A client certificate the TLS listener verified (`tls.identity`). */
  | 'certificate';

/** Who a client is: what its permissions and client id patterns are built from. */
export interface Identity {
  /** Undefined: anonymous. */
  username: string | undefined;
  proof: Proof;
  /** The verified claims of a token. */
  claims?: Readonly<Record<string, unknown>>;
  /** When a token stops being valid, in milliseconds since the epoch. */
  expiresAt?: number;
}

/** Anonymous, nothing proved: one object for all (identities are never changed, only replaced). */
const NOBODY: Identity = Object.freeze({ username: undefined, proof: 'none' });

/** No identity proved. */
export function unproved(username: string | undefined): Identity {
  if (username === undefined) return NOBODY;
  return { username, proof: 'none' };
}

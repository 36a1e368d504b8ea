/**
 * Unsecured OAuth bearer tokens, as Kafka's built-in unsecured validator
 * (OAuthBearerUnsecuredValidatorCallbackHandler) takes them: an unsigned JWS — base64url of the
 * header `{"alg":"none"}`, a dot, base64url of the claims, a dot, no signature. The private
 * cluster's SASL_SSL listeners take them (scripts/kafka/security.ts saslSslBrokerSettings).
 *
 *   unsecuredToken({ sub: 'bridge', lifetimeMs: 3_600_000 })                       // valid 1 h
 *   unsecuredToken({ sub: 'bridge', lifetimeMs: 60_000, issuedAtMs: Date.now() - 3_600_000 })
 *                                                                       // expired 59 min ago
 */
export interface UnsecuredTokenOptions {
  /** The principal (`sub` claim). */
  sub: string;
  /** `exp` − `iat`, in ms. */
  lifetimeMs: number;
  /** `iat` in ms since the epoch; default now. */
  issuedAtMs?: number;
}

const base64url = (value: unknown): string =>
  Buffer.from(JSON.stringify(value)).toString('base64url');

/** An unsigned JWS with `sub`, `iat` and `exp` (seconds since the epoch, as JWT wants). */
export function unsecuredToken(options: UnsecuredTokenOptions): string {
  const issuedAtMs = options.issuedAtMs ?? Date.now();
  const claims = {
    sub: options.sub,
    iat: Math.floor(issuedAtMs / 1000),
    exp: Math.floor((issuedAtMs + options.lifetimeMs) / 1000),
  };
  return `${base64url({ alg: 'none' })}.${base64url(claims)}.`;
}

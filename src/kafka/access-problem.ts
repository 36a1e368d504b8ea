/** Kafka refused the bridge (credentials, certificate, ACLs), as opposed to not answering at all. */
export interface AccessProblem {
  /** host:port of the broker that refused, when the error says. */
  broker: string | undefined;
  /** What went wrong, for people: one line, never a secret. */
  cause: string;
  /**
   * The kind of refusal, the same for every attempt that meets it (the wording of KafkaJS's
   * errors varies with the path that met it): what a refusal is logged once a minute under.
   */
  kind: string;
}

interface ErrorShape {
  name?: unknown;
  type?: unknown;
  message?: unknown;
  code?: unknown;
  broker?: unknown;
  cause?: unknown;
  originalError?: unknown;
}

/** Node's codes for a certificate the bridge does not trust. */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Whether `error` (or one it wraps) says Kafka refused the bridge's credentials or the bridge
 * refused Kafka's certificate: retrying helps only once the configuration or the cluster is
 * mended, so it is said once, clearly, rather than as a connection failure.
 */
export function accessProblemOf(error: unknown): AccessProblem | undefined {
  let broker: string | undefined;
  for (let current = error, depth = 0; depth < 5; depth++) {
    if (typeof current !== 'object' || current === null) return undefined;
    const shape = current as ErrorShape;
    if (typeof shape.broker === 'string') broker ??= shape.broker;
    const message = typeof shape.message === 'string' ? shape.message : '';
    const code = typeof shape.code === 'string' ? shape.code : '';
    if (shape.name === 'KafkaJSSASLAuthenticationError') {
      return { broker, cause: message, kind: 'sasl-authentication' };
    }
    // the bridge's user lacks an ACL (IdempotentWrite on the cluster, Describe on a topic...)
    if (typeof shape.type === 'string' && shape.type.endsWith('_AUTHORIZATION_FAILED')) {
      return {
        broker,
        cause: `not authorized (${shape.type}): ${message}`,
        kind: `authorization:${shape.type}`,
      };
    }
    if (UNTRUSTED_CERTIFICATE.has(code)) {
      return {
        broker,
        cause: `broker certificate not trusted (${code}): ${message}`,
        kind: `certificate:${code}`,
      };
    }
    if (
      code.startsWith('ERR_SSL_') ||
      /wrong version number|packet length too long/.test(message)
    ) {
      return {
        broker,
        cause: `TLS handshake failed (is the listener TLS?): ${message}`,
        kind: 'tls-handshake',
      };
    }
    current = shape.cause ?? shape.originalError;
  }
  return undefined;
}

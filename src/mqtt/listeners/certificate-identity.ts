import { TLSSocket } from 'node:tls';

/** Which part of a verified client certificate is the client's user name (`tls.identity`). */
export const CERTIFICATE_IDENTITIES = ['none', 'cn', 'san'] as const;
export type CertificateIdentity = (typeof CERTIFICATE_IDENTITIES)[number];

/**
 * The user name a client certificate gives: its subject's Common Name (`cn`) or its first
 * Subject Alternative Name (`san`: DNS name, URI, e-mail address or IP address, as written).
 * Undefined when there is none, or the certificate was not verified against `tls.caFile`.
 */
export function certificateName(
  socket: unknown,
  identity: CertificateIdentity,
): string | undefined {
  if (identity === 'none' || !(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const certificate = socket.getPeerCertificate();
  if (identity === 'cn') {
    // a subject with several CNs lists them all: which one is meant is not clear, so none
    const cn: unknown = certificate.subject.CN;
    return typeof cn === 'string' && cn !== '' ? cn : undefined;
  }
  const first = certificate.subjectaltname?.split(', ')[0];
  const value = first?.slice(first.indexOf(':') + 1);
  return value === undefined || value === '' ? undefined : value;
}

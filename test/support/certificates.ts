import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM files of a test CA, a server certificate for localhost / 127.0.0.1 and a client certificate. */
export interface TestCertificates {
  folder: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  ca: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
}

function openssl(folder: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: folder, stdio: 'pipe' });
}

/** Issues `name`.crt / `name`.key signed by the CA in `folder`. */
async function issue(folder: string, name: string, subject: string, extensions: string) {
  await writeFile(join(folder, `${name}.ext`), extensions);
  openssl(folder, [
    'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`,
    '-subj', subject, '-out', `${name}.csr`,
  ]); // prettier-ignore
  openssl(folder, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-CAcreateserial', '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`,
  ]); // prettier-ignore
}

/**
 * Issues another client certificate from the test CA, with this subject and, when given,
 * subjectAltName (e.g. `DNS:sensor-9.example`).
 */
export async function issueClientCertificate(
  certificates: TestCertificates,
  name: string,
  subject: string,
  subjectAltName?: string,
): Promise<{ cert: Buffer; key: Buffer }> {
  const { folder } = certificates;
  const san = subjectAltName === undefined ? '' : `subjectAltName=${subjectAltName}\n`;
  await issue(folder, name, subject, `extendedKeyUsage=clientAuth\n${san}`);
  return {
    cert: await readFile(join(folder, `${name}.crt`)),
    key: await readFile(join(folder, `${name}.key`)),
  };
}

/** Creates them with the openssl command in a temporary folder (the caller removes it). */
export async function createTestCertificates(): Promise<TestCertificates> {
  const folder = await mkdtemp(join(tmpdir(), 'bridge-tls-'));
  openssl(folder, [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt',
    '-days', '2', '-subj', '/CN=bridge test CA',
  ]); // prettier-ignore
  await issue(folder, 'server', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  await issue(folder, 'client', '/CN=device-1', 'extendedKeyUsage=clientAuth\n');
  return {
    folder,
    caFile: join(folder, 'ca.crt'),
    serverCertFile: join(folder, 'server.crt'),
    serverKeyFile: join(folder, 'server.key'),
    ca: await readFile(join(folder, 'ca.crt')),
    clientCert: await readFile(join(folder, 'client.crt')),
    clientKey: await readFile(join(folder, 'client.key')),
  };
}

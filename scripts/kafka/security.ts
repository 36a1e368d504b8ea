/**
 * Security material of a local SASL_SSL Kafka (`npm run kafka:start -- --security sasl-ssl`, and
 * the tests' private cluster): a CA and a broker certificate (SAN 127.0.0.1 and localhost) made
 * with the openssl command, and one SCRAM-SHA-512 user with a generated password (the listener
 * also takes OAUTHBEARER with unsecured tokens: see saslSslBrokerSettings). Everything is
 * written once into a folder of the (git-ignored) data dir and reused on the next start, so the
 * printed settings stay valid.
 *
 * The broker reads PEM directly (ssl.keystore.type=PEM, ssl.truststore.type=PEM); the user is
 * created when the storage is formatted (StorageTool `--add-scram`).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { KafkaClientSecurity } from './local-kafka.js';

const execFileAsync = promisify(execFile);

/** The SASL mechanism of the local SASL_SSL listener, as the bridge's config and KafkaJS name it. */
export const SASL_MECHANISM = 'scram-sha-512';
/** The same, as Kafka and librdkafka name it. */
export const KAFKA_SASL_MECHANISM = 'SCRAM-SHA-512';
export const DEFAULT_SASL_USERNAME = 'bridge';

const CREDENTIALS_FILE = 'credentials.json';
const CA_FILE = 'ca.pem';
const CA_KEY_FILE = 'ca.key';
const KEYSTORE_FILE = 'broker-keystore.pem';

export interface KafkaSecurityMaterial {
  /** Folder holding the files below. */
  dir: string;
  /** PEM of the CA that signed the broker certificate (what clients trust). */
  caFile: string;
  caPem: string;
  /** The broker's private key (PKCS#8, unencrypted), its certificate and the CA: a PEM keystore. */
  keystoreFile: string;
  username: string;
  password: string;
  mechanism: typeof SASL_MECHANISM;
}

interface StoredCredentials {
  username: string;
  password: string;
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') {
      throw new Error(
        'The openssl command is needed to make the certificates of a SASL_SSL Kafka, but it was ' +
          'not found on the PATH (e.g. `apt-get install openssl`).',
      );
    }
    throw new Error(`openssl ${args[0] ?? ''} failed: ${failure.stderr ?? failure.message}`);
  }
}

async function createCertificates(dir: string): Promise<void> {
  const tmp = path.join(dir, `tmp-${randomBytes(4).toString('hex')}`);
  await fs.mkdir(tmp, { recursive: true, mode: 0o700 });
  try {
    await fs.writeFile(
      path.join(tmp, 'ca.ext'),
      [
        'basicConstraints=critical,CA:TRUE',
        'keyUsage=critical,keyCertSign,cRLSign',
        'subjectKeyIdentifier=hash',
        '',
      ].join('\n'),
    );
    await fs.writeFile(
      path.join(tmp, 'broker.ext'),
      [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        'authorityKeyIdentifier=keyid',
        '',
      ].join('\n'),
    );
    // prettier-ignore
    await openssl(tmp, [
      'req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', CA_KEY_FILE, '-out', 'ca.csr',
      '-subj', '/CN=mqtt-kafka-bridge local Kafka CA',
    ]);
    // prettier-ignore
    await openssl(tmp, [
      'x509', '-req', '-in', 'ca.csr', '-signkey', CA_KEY_FILE, '-days', '3650',
      '-extfile', 'ca.ext', '-out', CA_FILE,
    ]);
    // prettier-ignore
    await openssl(tmp, [
      'req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'broker.key', '-out', 'broker.csr',
      '-subj', '/CN=localhost',
    ]);
    // prettier-ignore
    await openssl(tmp, [
      'x509', '-req', '-in', 'broker.csr', '-CA', CA_FILE, '-CAkey', CA_KEY_FILE,
      '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', '825',
      '-extfile', 'broker.ext', '-out', 'broker.pem',
    ]);
    const [key, cert, ca] = await Promise.all(
      ['broker.key', 'broker.pem', CA_FILE].map((file) =>
        fs.readFile(path.join(tmp, file), 'utf8'),
      ),
    );
    await fs.writeFile(path.join(tmp, KEYSTORE_FILE), `${key}${cert}${ca}`, { mode: 0o600 });
    await fs.chmod(path.join(tmp, CA_KEY_FILE), 0o600);
    // The keystore last: its presence means the set is complete.
    for (const file of [CA_KEY_FILE, CA_FILE, 'broker.pem', KEYSTORE_FILE]) {
      await fs.rename(path.join(tmp, file), path.join(dir, file));
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/**
 * The security material in `dir`, created there first if missing: the certificates (once), and
 * the SCRAM user `username` (default `bridge`) with a random password (once; kept in
 * credentials.json, mode 0600).
 */
export async function ensureSecurityMaterial(
  dir: string,
  options: { username?: string } = {},
): Promise<KafkaSecurityMaterial> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(path.join(dir, KEYSTORE_FILE)) || !existsSync(path.join(dir, CA_FILE))) {
    await createCertificates(dir);
  }
  const credentialsFile = path.join(dir, CREDENTIALS_FILE);
  let credentials: StoredCredentials;
  if (existsSync(credentialsFile)) {
    credentials = JSON.parse(await fs.readFile(credentialsFile, 'utf8')) as StoredCredentials;
  } else {
    credentials = {
      username: options.username ?? DEFAULT_SASL_USERNAME,
      // Hex: nothing StorageTool's `[name=...,password=...]` syntax or a shell would mind.
      password: randomBytes(18).toString('hex'),
    };
    await fs.writeFile(credentialsFile, `${JSON.stringify(credentials, null, 2)}\n`, {
      mode: 0o600,
    });
  }
  const caFile = path.join(dir, CA_FILE);
  return {
    dir,
    caFile,
    caPem: await fs.readFile(caFile, 'utf8'),
    keystoreFile: path.join(dir, KEYSTORE_FILE),
    username: credentials.username,
    password: credentials.password,
    mechanism: SASL_MECHANISM,
  };
}

/** StorageTool `--add-scram` value creating the material's user. */
export function scramCredential(material: KafkaSecurityMaterial): string {
  return `${KAFKA_SASL_MECHANISM}=[name=${material.username},password=${material.password}]`;
}

/** KafkaJS `ssl` and `sasl` settings for the SASL_SSL listener. */
export function kafkaJsSecurity(
  material: KafkaSecurityMaterial,
  password = material.password,
): KafkaClientSecurity {
  return {
    ssl: { ca: [material.caPem] },
    sasl: { mechanism: SASL_MECHANISM, username: material.username, password },
  };
}

/** The SASL mechanisms of the local SASL_SSL listener, as Kafka names them. */
export const KAFKA_SASL_MECHANISMS = [KAFKA_SASL_MECHANISM, 'OAUTHBEARER'] as const;

/**
 * Broker settings of a SASL_SSL listener called `listener` (upper case).
 *
 * Next to SCRAM-SHA-512 (the user of the material), the listener takes OAUTHBEARER with Kafka's
 * built-in UNSECURED validator (OAuthBearerUnsecuredValidatorCallbackHandler, Kafka's default
 * when no `sasl.server.callback.handler.class` is set): any unsigned JWS (`{"alg":"none"}`) with a
 * `sub` and an `exp` in the future is taken, its `sub` being the principal — so the bridge's
 * `kafka.sasl.oauthTokenFile` can be tried against a real Kafka
 * (test/integration/kafka-oauth.test.ts, test/support/oauth-token.ts). Local use only: it trusts
 * whoever writes a token. The broker needs a JAAS entry for every enabled mechanism of a listener
 * (without one it does not start: "Could not find a 'KafkaServer' or 'client.KafkaServer' entry
 * in the JAAS configuration"); its unsecured login module wants a `sub` for the broker's own
 * token, which nothing uses (the brokers talk PLAINTEXT among themselves).
 */
export function saslSslBrokerSettings(material: KafkaSecurityMaterial, listener: string): string[] {
  const prefix = `listener.name.${listener.toLowerCase()}`;
  return [
    `sasl.enabled.mechanisms=${KAFKA_SASL_MECHANISMS.join(',')}`,
    `${prefix}.${KAFKA_SASL_MECHANISM.toLowerCase()}.sasl.jaas.config=` +
      'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    `${prefix}.oauthbearer.sasl.jaas.config=` +
      'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ' +
      'unsecuredLoginStringClaim_sub="broker";',
    `${prefix}.ssl.keystore.type=PEM`,
    `${prefix}.ssl.keystore.location=${material.keystoreFile}`,
    `${prefix}.ssl.truststore.type=PEM`,
    `${prefix}.ssl.truststore.location=${material.caFile}`,
    `${prefix}.ssl.client.auth=none`,
  ];
}

/** The BRIDGE_KAFKA_* variables that point the bridge at a Kafka (secured or not). */
export function bridgeKafkaEnv(
  brokers: string,
  material: KafkaSecurityMaterial | undefined,
): Record<string, string> {
  const env: Record<string, string> = { BRIDGE_KAFKA_BROKERS: brokers };
  if (material) {
    env.BRIDGE_KAFKA_SSL_ENABLED = 'true';
    env.BRIDGE_KAFKA_SSL_CA_FILE = material.caFile;
    env.BRIDGE_KAFKA_SASL_MECHANISM = material.mechanism;
    env.BRIDGE_KAFKA_SASL_USERNAME = material.username;
    env.BRIDGE_KAFKA_SASL_PASSWORD = material.password;
  }
  return env;
}

/** `value` quoted for a POSIX shell when it needs it. */
export function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/** A kcat command line listing the metadata of the secured Kafka. */
export function kcatCommand(brokers: string, material: KafkaSecurityMaterial): string {
  return [
    'kcat',
    '-b',
    brokers,
    '-X',
    'security.protocol=SASL_SSL',
    '-X',
    `sasl.mechanisms=${KAFKA_SASL_MECHANISM}`,
    '-X',
    `sasl.username=${material.username}`,
    '-X',
    `sasl.password=${material.password}`,
    '-X',
    `ssl.ca.location=${material.caFile}`,
    '-L',
  ]
    .map(shellQuote)
    .join(' ');
}

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SASLOptions } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import { accessProblemOf } from '../../../src/kafka/access-problem.js';
import { loadKafkaSecurity, tlsOptionsFor } from '../../../src/kafka/security.js';

async function tempFile(name: string, text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'security-')), name);
  await writeFile(path, text);
  return path;
}

const kafkaOf = (env: Record<string, string>) => loadConfig({ env }).kafka;

describe('Kafka security options', () => {
  it('are off by default: plaintext, no SASL', async () => {
    expect(await loadKafkaSecurity(kafkaOf({}))).toEqual({ ssl: undefined, sasl: undefined });
  });

  it('reads the CA, client certificate and key files for TLS', async () => {
    const ca = await tempFile('ca.pem', 'CA PEM');
    const cert = await tempFile('cert.pem', 'CERT PEM');
    const key = await tempFile('key.pem', 'KEY PEM');
    const security = await loadKafkaSecurity(
      kafkaOf({
        BRIDGE_KAFKA_SSL_ENABLED: 'true',
        BRIDGE_KAFKA_SSL_CA_FILE: ca,
        BRIDGE_KAFKA_SSL_CERT_FILE: cert,
        BRIDGE_KAFKA_SSL_KEY_FILE: key,
        BRIDGE_KAFKA_SSL_REJECT_UNAUTHORIZED: 'false',
      }),
    );
    expect(security.ssl).toEqual({
      rejectUnauthorized: false,
      ca: ['CA PEM'],
      cert: 'CERT PEM',
      key: 'KEY PEM',
    });
    // SNI carries host names, never IP addresses
    expect(tlsOptionsFor({}, 'kafka-1.example.com')).toMatchObject({
      servername: 'kafka-1.example.com',
    });
    expect(tlsOptionsFor({}, '127.0.0.1')).not.toHaveProperty('servername');
  });

  it('takes the SCRAM password from a file, without its trailing newline', async () => {
    const file = await tempFile('password', 's3cret\n');
    const { sasl } = await loadKafkaSecurity(
      kafkaOf({
        BRIDGE_KAFKA_SASL_MECHANISM: 'scram-sha-512',
        BRIDGE_KAFKA_SASL_USERNAME: 'bridge',
        BRIDGE_KAFKA_SASL_PASSWORD_FILE: file,
      }),
    );
    expect(sasl).toEqual({ mechanism: 'scram-sha-512', username: 'bridge', password: 's3cret' });
  });

  it('reads the OAuth token file at every authentication, so a renewed token is used', async () => {
    const file = await tempFile('token', 'token-1\n');
    const { sasl } = await loadKafkaSecurity(
      kafkaOf({
        BRIDGE_KAFKA_SASL_MECHANISM: 'oauthbearer',
        BRIDGE_KAFKA_SASL_OAUTH_TOKEN_FILE: file,
      }),
    );
    const provider = (sasl as Extract<SASLOptions, { mechanism: 'oauthbearer' }>)
      .oauthBearerProvider;
    expect(await provider()).toEqual({ value: 'token-1' });
    await writeFile(file, 'token-2');
    expect(await provider()).toEqual({ value: 'token-2' });
  });

  it('names the option and its variable when a file cannot be read', async () => {
    await expect(
      loadKafkaSecurity(
        kafkaOf({ BRIDGE_KAFKA_SSL_ENABLED: 'true', BRIDGE_KAFKA_SSL_CA_FILE: '/nope/ca.pem' }),
      ),
    ).rejects.toThrow(
      /^kafka\.ssl\.caFile \(env BRIDGE_KAFKA_SSL_CA_FILE\): cannot read "\/nope\/ca\.pem"/,
    );
  });

  it.each([
    [
      { BRIDGE_KAFKA_SSL_CERT_FILE: 'c.pem' },
      /kafka\.ssl\.certFile .* and kafka\.ssl\.keyFile .* go together/,
    ],
    [
      { BRIDGE_KAFKA_SASL_MECHANISM: 'plain', BRIDGE_KAFKA_SASL_PASSWORD: 'x' },
      /kafka\.sasl\.username \(env BRIDGE_KAFKA_SASL_USERNAME\) is empty/,
    ],
    [
      { BRIDGE_KAFKA_SASL_MECHANISM: 'scram-sha-256', BRIDGE_KAFKA_SASL_USERNAME: 'u' },
      /set exactly one of kafka\.sasl\.password \(env BRIDGE_KAFKA_SASL_PASSWORD\) and kafka\.sasl\.passwordFile/,
    ],
    [
      { BRIDGE_KAFKA_SASL_MECHANISM: 'oauthbearer' },
      /kafka\.sasl\.oauthTokenFile \(env BRIDGE_KAFKA_SASL_OAUTH_TOKEN_FILE\) is empty/,
    ],
    [
      { BRIDGE_KAFKA_SASL_MECHANISM: 'kerberos' },
      /kafka\.sasl\.mechanism \(env BRIDGE_KAFKA_SASL_MECHANISM\): must be one of/,
    ],
  ])('refuses settings that cannot work: %o', (env, message) => {
    expect(() => loadConfig({ env })).toThrow(ConfigError);
    expect(() => loadConfig({ env })).toThrow(message);
  });
});

describe('accessProblemOf', () => {
  it('tells refused credentials and untrusted certificates from outages, with the broker when known', () => {
    const sasl = Object.assign(
      new Error('SASL SCRAM SHA512 authentication failed: invalid credentials'),
      {
        name: 'KafkaJSSASLAuthenticationError',
      },
    );
    expect(accessProblemOf({ name: 'KafkaJSNonRetriableError', cause: sasl })).toEqual({
      broker: undefined,
      cause: 'SASL SCRAM SHA512 authentication failed: invalid credentials',
      kind: 'sasl-authentication',
    });
    const tls = Object.assign(
      new Error('Connection error: self-signed certificate in certificate chain'),
      {
        name: 'KafkaJSConnectionError',
        code: 'SELF_SIGNED_CERT_IN_CHAIN',
        broker: 'k1:9093',
      },
    );
    expect(accessProblemOf(tls)).toEqual({
      broker: 'k1:9093',
      cause:
        'broker certificate not trusted (SELF_SIGNED_CERT_IN_CHAIN): Connection error: self-signed certificate in certificate chain',
      kind: 'certificate:SELF_SIGNED_CERT_IN_CHAIN',
    });
    const refused = Object.assign(new Error('Connection error: connect ECONNREFUSED'), {
      name: 'KafkaJSConnectionError',
      code: 'ECONNREFUSED',
    });
    expect(accessProblemOf(refused)).toBeUndefined();
  });
});

import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import kafkajs, {
  type AuthenticationProviderArgs,
  type Authenticator,
  type Mechanism,
  type SASLOptions,
} from 'kafkajs';
import {
  ConfigError,
  envVarOf,
  type KafkaSaslConfig,
  type KafkaSslConfig,
} from '../config/load.js';

/** How the bridge's Kafka connections are secured: TLS options and SASL credentials. */
export interface KafkaSecurity {
  /** Undefined: plaintext. */
  ssl: ConnectionOptions | undefined;
  /** Undefined: no SASL. */
  sasl: SASLOptions | Mechanism | undefined;
}

export const PLAINTEXT: KafkaSecurity = { ssl: undefined, sasl: undefined };

/**
 * Reads the files `kafka.ssl.*` and `kafka.sasl.*` name (once, at start; the OAuth token file
 * on every authentication) into options for KafkaJS and the readiness probe. A missing or
 * unreadable file is a ConfigError naming the option and its environment variable.
 */
export async function loadKafkaSecurity(config: {
  ssl: KafkaSslConfig;
  sasl: KafkaSaslConfig;
}): Promise<KafkaSecurity> {
  return { ssl: await tlsOptions(config.ssl), sasl: await saslOptions(config.sasl) };
}

async function tlsOptions(ssl: KafkaSslConfig): Promise<ConnectionOptions | undefined> {
  if (!ssl.enabled) return undefined;
  const options: ConnectionOptions = { rejectUnauthorized: ssl.rejectUnauthorized };
  if (ssl.caFile !== '') options.ca = [await readOption('kafka.ssl.caFile', ssl.caFile)];
  if (ssl.certFile !== '') options.cert = await readOption('kafka.ssl.certFile', ssl.certFile);
  if (ssl.keyFile !== '') options.key = await readOption('kafka.ssl.keyFile', ssl.keyFile);
  return options;
}

async function saslOptions(sasl: KafkaSaslConfig): Promise<SASLOptions | Mechanism | undefined> {
  switch (sasl.mechanism) {
    case 'none':
      return undefined;
    case 'oauthbearer': {
      const file = sasl.oauthTokenFile;
      // read on every (re-)authentication, so a token a sidecar renews is used once it changes
      const oauthBearerProvider = async (): Promise<{ value: string }> => ({
        value: (await readOption('kafka.sasl.oauthTokenFile', file)).trim(),
      });
      return {
        mechanism: 'oauthbearer',
        oauthBearerProvider,
        authenticationProvider: oauthBearerAuthenticator(oauthBearerProvider),
      } as Mechanism;
    }
    case 'plain':
    case 'scram-sha-256':
    case 'scram-sha-512': {
      const password =
        sasl.passwordFile === ''
          ? sasl.password
          : (await readOption('kafka.sasl.passwordFile', sasl.passwordFile)).replace(/\r?\n$/, '');
      return { mechanism: sasl.mechanism, username: sasl.username, password } as SASLOptions;
    }
  }
}

const SOH = '\u0001';

/** SASL bytes as KafkaJS's SaslAuthenticate request wants them: length-prefixed. */
function lengthPrefixed(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length);
  return Buffer.concat([length, body]);
}

/**
 * OAUTHBEARER (RFC 7628, KIP-255) that notices a refused token. KafkaJS's own authenticator takes
 * any answer as success, but Kafka refuses a token with a challenge (`{"status":"invalid_token"}`)
 * instead of an error; KafkaJS then sent requests Kafka does not serve on that connection and
 * the bridge only saw "No brokers in the broker pool". Here a non-empty challenge is answered with
 * the 0x01 the RFC asks for (Kafka then fails the exchange and closes the connection) and is a
 * KafkaJSSASLAuthenticationError, as with the other mechanisms.
 */
function oauthBearerAuthenticator(
  provider: () => Promise<{ value: string }>,
): (args: AuthenticationProviderArgs) => Authenticator {
  return ({ host, port, logger, saslAuthenticate }) => ({
    authenticate: async () => {
      const { value } = await provider();
      const broker = `${host}:${port}`;
      const challenge = await saslAuthenticate<Buffer>({
        request: { encode: () => lengthPrefixed(`n,,${SOH}auth=Bearer ${value}${SOH}${SOH}`) },
        response: { decode: (raw) => raw.subarray(4), parse: (data) => data },
      });
      if (!challenge || challenge.length === 0) return;
      const status = challenge.toString('utf8');
      await saslAuthenticate({ request: { encode: () => lengthPrefixed(SOH) } }).catch(
        () => undefined,
      );
      // (KafkaJS's typings leave out the message argument its errors take)
      const error = new (kafkajs.KafkaJSSASLAuthenticationError as new (message: string) => Error)(
        `SASL OAUTHBEARER authentication failed: Kafka refused the token: ${status}`,
      );
      logger.error(error.message, { broker });
      throw error;
    },
  });
}

async function readOption(option: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `${option} (env ${envVarOf(option) ?? '?'}): cannot read "${file}": ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** TLS options for one broker: its host name for SNI (not for IP addresses, which TLS forbids). */
export function tlsOptionsFor(ssl: ConnectionOptions, host: string): ConnectionOptions {
  return isIP(host) === 0 ? { ...ssl, host, servername: host } : { ...ssl, host };
}

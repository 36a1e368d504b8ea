import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
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
  sasl: SASLOptions | undefined;
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

async function saslOptions(sasl: KafkaSaslConfig): Promise<SASLOptions | undefined> {
  switch (sasl.mechanism) {
    case 'none':
      return undefined;
    case 'oauthbearer': {
      const file = sasl.oauthTokenFile;
      // read on every (re-)authentication, so a token a sidecar renews is used once it changes
      return {
        mechanism: 'oauthbearer',
        oauthBearerProvider: async () => ({
          value: (await readOption('kafka.sasl.oauthTokenFile', file)).trim(),
        }),
      };
    }
    case 'plain':
    case 'scram-sha-256':
    case 'scram-sha-512': {
      const password =
        sasl.passwordFile === ''
          ? sasl.password
          : (await readOption('kafka.sasl.passwordFile', sasl.passwordFile)).replace(/\r?\n$/, '');
      return { mechanism: sasl.mechanism, username: sasl.username, password };
    }
  }
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

import { hostname } from 'node:os';
import convict from 'convict';
import { parse as parseYaml } from 'yaml';
import { configSchema } from './schema.js';
import { BridgeError } from '../errors.js';
import type { CertificateIdentity } from '../mqtt/listeners/certificate-identity.js';

export interface BridgeConfig {
  mqtt: {
    host: string;
    port: number;
    maxPacketSize: number;
    maxWriteBuffer: number;
    maxQueuedMessages: number;
    maxDelayedMessages: number;
    maxDelayedPerClient: number;
    maxSubscriptionsPerClient: number;
    maxTopicLevels: number;
    maxTopicLength: number;
    maxPublishRate: number;
    maxKeepAlive: number;
    receiveMaximum: number;
    maxInflight: number;
    maxSessionExpiry: number;
    responseTopicPrefix: string;
    serverReference: string;
    redirect: 'none' | 'use-another-server' | 'server-moved';
    connectTimeoutMs: number;
    maxConnections: number;
    maxConnectionsPerAddress: number;
    maxConnectRate: number;
  };
  websocket: { enabled: boolean; host: string; port: number; path: string };
  mqtts: { enabled: boolean; host: string; port: number };
  wss: { enabled: boolean; host: string; port: number };
  tls: {
    certFile: string;
    keyFile: string;
    caFile: string;
    requireClientCert: boolean;
    identity: CertificateIdentity;
  };
  kafka: {
    brokers: string[];
    clientId: string;
    lingerMs: number;
    batchMaxRecords: number;
    batchMaxBytes: number;
    maxPendingBytes: number;
    maxPendingRecords: number;
    ackTimeoutMs: number;
    connectTimeoutMs: number;
    compression: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
    createTopics: boolean;
    createTopicsPartitions: number;
    createTopicsReplicationFactor: number;
    ssl: KafkaSslConfig;
    sasl: KafkaSaslConfig;
  };
  downlink: {
    groupId: string;
    instanceId: string;
    startDelayMs: number;
    sessionTimeoutMs: number;
    maxUnsettled: number;
    slowSubscriberWaitMs: number;
    commitIntervalMs: number;
  };
  instance: { id: string; timeoutMs: number };
  sessions: {
    store: 'memory' | 'kafka';
    topic: string;
    messagesTopic: string;
    partitions: number;
    restartGraceMs: number;
    messagesRetentionMs: number;
  };
  retained: { topic: string; maxMessages: number; maxBytes: number };
  schemaRegistry: SchemaRegistryConfig;
  mappings: string;
  mappingsWatch: boolean;
  auth: { file: string; allowAnonymous: boolean; failureDelayMaxMs: number };
  sys: { interval: number };
  http: { host: string; port: number };
  admin: { token: string; tokenFile: string };
  log: { level: string; pretty: boolean };
  shutdownGraceMs: number;
}

export interface KafkaSslConfig {
  enabled: boolean;
  caFile: string;
  certFile: string;
  keyFile: string;
  rejectUnauthorized: boolean;
}

export type KafkaSaslMechanism =
  'none' | 'plain' | 'scram-sha-256' | 'scram-sha-512' | 'oauthbearer';

export interface KafkaSaslConfig {
  mechanism: KafkaSaslMechanism;
  username: string;
  password: string;
  passwordFile: string;
  oauthTokenFile: string;
}

export interface SchemaRegistryConfig {
  url: string;
  username: string;
  password: string;
  passwordFile: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  rejectUnauthorized: boolean;
}

/** Deep-partial overrides given programmatically (CLI flags, tests). */
export type ConfigOverrides = {
  [K in keyof BridgeConfig]?: BridgeConfig[K] extends object
    ? BridgeConfig[K] extends unknown[]
      ? BridgeConfig[K]
      : Partial<BridgeConfig[K]>
    : BridgeConfig[K];
};

export interface LoadConfigOptions {
  /** A .json, .yaml or .yml file. */
  file?: string | undefined;
  overrides?: ConfigOverrides;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

const BROKER = /^[^\s:,]+:\d{1,5}$/;

convict.addFormat({
  name: 'positive-int',
  validate(value: unknown) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new Error('must be a positive integer');
    }
  },
  coerce: (value: string) => Number(value),
});

/**
 * Integers within what MQTT can carry: an option beyond the protocol's field would make the
 * bridge unable to encode its CONNACK (e.g. a Receive Maximum above 65,535).
 */
for (const [name, min, max] of [
  ['uint16-positive', 1, 65_535],
  ['uint16', 0, 65_535],
  ['uint32', 0, 4_294_967_295],
  ['mqtt-packet-size', 1, 268_435_455],
] as const) {
  convict.addFormat({
    name,
    validate(value: unknown) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        throw new Error(`must be an integer from ${min} to ${max.toLocaleString('en')}`);
      }
    },
    coerce: (value: string) => Number(value),
  });
}

convict.addFormat({
  name: 'broker-list',
  validate(value: unknown) {
    if (!Array.isArray(value) || value.length === 0) {
      throw new Error('must be a non-empty list of host:port');
    }
    for (const broker of value) {
      if (typeof broker !== 'string' || !BROKER.test(broker)) {
        throw new Error(`"${String(broker)}" is not host:port`);
      }
    }
  },
  coerce: (value: string) =>
    value
      .split(',')
      .map((broker) => broker.trim())
      .filter((broker) => broker !== ''),
});

convict.addParser({ extension: ['yaml', 'yml'], parse: parseYaml });

export class ConfigError extends BridgeError {
  constructor(message: string, options?: ErrorOptions) {
    super('CONFIG_INVALID', message, options);
  }
}

/** Environment variable of a dotted option name, e.g. mqtt.port → BRIDGE_MQTT_PORT. */
export function envVarOf(option: string): string | undefined {
  let node: unknown = configSchema;
  for (const part of option.split('.')) {
    if (typeof node !== 'object' || node === null || !(part in node)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  if (typeof node === 'object' && node !== null && 'env' in node && typeof node.env === 'string') {
    return node.env;
  }
  return undefined;
}

/** Rewrites convict's messages so each names the option and its environment variable. */
function describeProblems(convictMessage: string): string {
  const lines = convictMessage.split('\n').map((line) => {
    const undeclared = /^configuration param '(.+)' not declared in the schema$/.exec(line);
    if (undeclared) return `unknown option "${undeclared[1] ?? ''}"`;
    const invalid = /^([\w.]+): (.*)$/s.exec(line);
    if (invalid) {
      const [, option = '', problem = ''] = invalid;
      const env = envVarOf(option);
      return env ? `${option} (env ${env}): ${problem}` : `${option}: ${problem}`;
    }
    return line;
  });
  return `invalid configuration:\n${lines.map((line) => `  - ${line}`).join('\n')}`;
}

/**
 * Builds the configuration: defaults < file < environment < overrides.
 * Throws ConfigError naming every bad option, its env var and the bad value.
 */
export function loadConfig(options: LoadConfigOptions = {}): BridgeConfig {
  const config = convict(configSchema, { env: options.env ?? process.env });
  try {
    if (options.file !== undefined) config.loadFile(options.file);
    if (options.overrides) config.load(options.overrides);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`cannot read configuration file ${options.file ?? ''}: ${reason}`, {
      cause: error,
    });
  }
  try {
    config.validate({ allowed: 'strict' });
  } catch (error) {
    throw new ConfigError(
      describeProblems(error instanceof Error ? error.message : String(error)),
      {
        cause: error,
      },
    );
  }
  const loaded = config.getProperties() as unknown as BridgeConfig;
  const secure = [loaded.mqtts.enabled && 'mqtts.enabled', loaded.wss.enabled && 'wss.enabled'];
  const needsCertificate = secure.find((option) => option !== false);
  if (needsCertificate && (loaded.tls.certFile === '' || loaded.tls.keyFile === '')) {
    throw new ConfigError(
      `${needsCertificate} is true but tls.certFile (env BRIDGE_TLS_CERT_FILE) and tls.keyFile (env BRIDGE_TLS_KEY_FILE) are not both set`,
    );
  }
  if (loaded.mqtt.redirect !== 'none' && loaded.mqtt.serverReference === '') {
    throw new ConfigError(
      `mqtt.redirect (env BRIDGE_MQTT_REDIRECT) is "${loaded.mqtt.redirect}" but mqtt.serverReference (env BRIDGE_MQTT_SERVER_REFERENCE) is empty: set where clients should go`,
    );
  }
  if (loaded.tls.identity !== 'none' && loaded.tls.caFile === '') {
    // the system CAs would let anyone with a public certificate in under any name
    throw new ConfigError(
      `tls.identity (env BRIDGE_TLS_IDENTITY) is "${loaded.tls.identity}" but tls.caFile (env BRIDGE_TLS_CA_FILE) is empty: set the CA that signs client certificates`,
    );
  }
  checkKafkaSecurity(loaded.kafka);
  if (loaded.admin.token !== '' && loaded.admin.tokenFile !== '') {
    throw new ConfigError(
      'admin.token (env BRIDGE_ADMIN_TOKEN) and admin.tokenFile (env BRIDGE_ADMIN_TOKEN_FILE) are both set: set one of them',
    );
  }
  if (loaded.sessions.topic === loaded.sessions.messagesTopic) {
    throw new ConfigError(
      `sessions.topic (env BRIDGE_SESSIONS_TOPIC) and sessions.messagesTopic (env BRIDGE_SESSIONS_MESSAGES_TOPIC) are both "${loaded.sessions.topic}": they need two topics`,
    );
  }
  if (loaded.sessions.store === 'kafka' && loaded.downlink.instanceId !== '') {
    throw new ConfigError(
      'downlink.instanceId (env BRIDGE_DOWNLINK_INSTANCE_ID) gives each bridge a downlink group of its own, which with sessions.store (env BRIDGE_SESSIONS_STORE) kafka would deliver every command once per bridge: name the bridge with instance.id (env BRIDGE_INSTANCE_ID) instead',
    );
  }
  if (loaded.instance.id === '') {
    // downlink.instanceId was the instance's name before instance.id: still taken as such
    loaded.instance.id = loaded.downlink.instanceId || `${hostname()}-${loaded.mqtt.port}`;
  }
  return loaded;
}

/** Options of `kafka.ssl` / `kafka.sasl` that only make sense together. */
function checkKafkaSecurity({ ssl, sasl }: BridgeConfig['kafka']): void {
  const named = (option: string): string => `${option} (env ${envVarOf(option) ?? '?'})`;
  if ((ssl.certFile === '') !== (ssl.keyFile === '')) {
    throw new ConfigError(
      `${named('kafka.ssl.certFile')} and ${named('kafka.ssl.keyFile')} go together: set both for mutual TLS, or neither`,
    );
  }
  const mechanism = named('kafka.sasl.mechanism');
  if (sasl.mechanism === 'oauthbearer') {
    if (sasl.oauthTokenFile === '') {
      throw new ConfigError(
        `${mechanism} is oauthbearer but ${named('kafka.sasl.oauthTokenFile')} is empty`,
      );
    }
  } else if (sasl.mechanism !== 'none') {
    if (sasl.username === '') {
      throw new ConfigError(
        `${mechanism} is ${sasl.mechanism} but ${named('kafka.sasl.username')} is empty`,
      );
    }
    if ((sasl.password === '') === (sasl.passwordFile === '')) {
      throw new ConfigError(
        `${mechanism} is ${sasl.mechanism}: set exactly one of ${named('kafka.sasl.password')} and ${named('kafka.sasl.passwordFile')}`,
      );
    }
  }
}

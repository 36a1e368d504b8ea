import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, envVarOf, loadConfig } from '../../../src/config/load.js';

async function tempFile(name: string, text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'config-')), name);
  await writeFile(path, text);
  return path;
}

describe('loadConfig', () => {
  it('gives the documented defaults', () => {
    const config = loadConfig({ env: {} });
    expect(config.mqtt.port).toBe(1883);
    expect(config.mqtt.host).toBe('0.0.0.0');
    expect(config.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(config.mappings).toBe('mappings');
    expect(config.log.level).toBe('info');
    // closed by default: health and metrics on loopback, no anonymous clients from the network
    expect(config.http.host).toBe('127.0.0.1');
    expect(config.auth).toEqual({ file: '', allowAnonymous: false, failureDelayMaxMs: 8000 });
  });

  it('reads environment variables, splitting broker lists', () => {
    const config = loadConfig({
      env: {
        BRIDGE_KAFKA_BROKERS: 'k1:9092, k2:9093',
        BRIDGE_MQTT_PORT: '1999',
        BRIDGE_MAPPINGS: '/etc/bridge/rules.yaml',
        BRIDGE_HTTP_PORT: '0',
        BRIDGE_LOG_LEVEL: 'debug',
        BRIDGE_LOG_PRETTY: 'true',
      },
    });
    expect(config.kafka.brokers).toEqual(['k1:9092', 'k2:9093']);
    expect(config.mqtt.port).toBe(1999);
    expect(config.mappings).toBe('/etc/bridge/rules.yaml');
    expect(config.http.port).toBe(0);
    expect(config.log).toEqual({ level: 'debug', pretty: true });
  });

  it('layers defaults < file < environment < overrides', async () => {
    const file = await tempFile(
      'bridge.yaml',
      'mqtt:\n  port: 2000\n  host: 127.0.0.1\nmappings: from-file\n',
    );
    const config = loadConfig({
      file,
      env: { BRIDGE_MQTT_PORT: '2001' },
      overrides: { mappings: 'from-flag' },
    });
    expect(config.mqtt.host).toBe('127.0.0.1');
    expect(config.mqtt.port).toBe(2001);
    expect(config.mappings).toBe('from-flag');
  });

  it('reads JSON files', async () => {
    const file = await tempFile('bridge.json', '{"kafka": {"brokers": ["a:1"]}}');
    expect(loadConfig({ file, env: {} }).kafka.brokers).toEqual(['a:1']);
  });

  it('names the option, its environment variable and the bad value', () => {
    const attempt = (): unknown =>
      loadConfig({ env: { BRIDGE_MQTT_PORT: '70000', BRIDGE_LOG_LEVEL: 'loud' } });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/mqtt\.port \(env BRIDGE_MQTT_PORT\): .*value was 70000/);
    expect(attempt).toThrow(/log\.level \(env BRIDGE_LOG_LEVEL\): .*value was "loud"/);
  });

  it('rejects broker addresses without a port', () => {
    expect(() => loadConfig({ env: { BRIDGE_KAFKA_BROKERS: 'kafka' } })).toThrow(
      /kafka\.brokers \(env BRIDGE_KAFKA_BROKERS\): "kafka" is not host:port/,
    );
  });

  it('rejects unknown options in a file', async () => {
    const file = await tempFile('bridge.yaml', 'mqtt:\n  prot: 1\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/unknown option "mqtt.prot"/);
  });

  it('names the instance: instance.id, else downlink.instanceId, else host name and MQTT port', () => {
    expect(loadConfig({ env: { BRIDGE_INSTANCE_ID: 'b7' } }).instance.id).toBe('b7');
    expect(loadConfig({ env: { BRIDGE_DOWNLINK_INSTANCE_ID: 'old' } }).instance.id).toBe('old');
    expect(loadConfig({ env: { BRIDGE_MQTT_PORT: '1999' } }).instance.id).toMatch(/-1999$/);
  });

  it.each([
    ['BRIDGE_MQTT_RECEIVE_MAXIMUM', '70000', 'mqtt.receiveMaximum', '1 to 65,535'],
    ['BRIDGE_MQTT_RECEIVE_MAXIMUM', '0', 'mqtt.receiveMaximum', '1 to 65,535'],
    ['BRIDGE_MQTT_MAX_KEEP_ALIVE', '65536', 'mqtt.maxKeepAlive', '0 to 65,535'],
    ['BRIDGE_MQTT_MAX_SESSION_EXPIRY', '4294967296', 'mqtt.maxSessionExpiry', '0 to 4,294,967,295'],
    ['BRIDGE_MQTT_MAX_PACKET_SIZE', '268435456', 'mqtt.maxPacketSize', '1 to 268,435,455'],
  ])('refuses %s=%s, beyond what MQTT can carry', (env, value, option, range) => {
    expect(() => loadConfig({ env: { [env]: value } })).toThrow(
      `${option} (env ${env}): must be an integer from ${range}`,
    );
  });

  it('says which file it cannot read', () => {
    expect(() => loadConfig({ file: '/nonexistent/bridge.yaml', env: {} })).toThrow(
      /cannot read configuration file \/nonexistent\/bridge.yaml/,
    );
  });

  it('names both options when a listener needs what another option lacks', () => {
    expect(() => loadConfig({ env: { BRIDGE_MQTTS_ENABLED: 'true' } })).toThrow(
      /mqtts\.enabled is true but tls\.certFile \(env BRIDGE_TLS_CERT_FILE\) and tls\.keyFile \(env BRIDGE_TLS_KEY_FILE\)/,
    );
    expect(() => loadConfig({ env: { BRIDGE_MQTT_REDIRECT: 'server-moved' } })).toThrow(
      /mqtt\.redirect \(env BRIDGE_MQTT_REDIRECT\) is "server-moved" but mqtt\.serverReference \(env BRIDGE_MQTT_SERVER_REFERENCE\) is empty/,
    );
    expect(() => loadConfig({ env: { BRIDGE_MQTT_REDIRECT: 'elsewhere' } })).toThrow(
      /mqtt\.redirect \(env BRIDGE_MQTT_REDIRECT\)/,
    );
    expect(() =>
      loadConfig({
        env: { BRIDGE_SESSIONS_STORE: 'kafka', BRIDGE_DOWNLINK_INSTANCE_ID: 'b1' },
      }),
    ).toThrow(
      /downlink\.instanceId \(env BRIDGE_DOWNLINK_INSTANCE_ID\).*instance\.id \(env BRIDGE_INSTANCE_ID\)/,
    );
    expect(() => loadConfig({ env: { BRIDGE_TLS_IDENTITY: 'cn' } })).toThrow(
      /tls\.identity \(env BRIDGE_TLS_IDENTITY\) is "cn" but tls\.caFile \(env BRIDGE_TLS_CA_FILE\) is empty/,
    );
  });

  it('maps option names to environment variables', () => {
    expect(envVarOf('kafka.brokers')).toBe('BRIDGE_KAFKA_BROKERS');
    expect(envVarOf('nope.nothing')).toBeUndefined();
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type ErrorWithReasonCode, type IClientOptions, type MqttClient } from 'mqtt';
import type { IPublishPacket } from 'mqtt-packet';
import { inject, onTestFinished } from 'vitest';
import { uniqueId } from './kafka-helpers.js';
import { Bridge } from '../../src/bridge.js';
import { loadConfig, type ConfigOverrides } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';

export interface RunningBridge {
  bridge: Bridge;
  mqttPort: number;
  /** Port of the WebSocket listener (path /mqtt); 0 when it is disabled. */
  websocketPort: number;
  httpUrl: string;
  /** The folder of the bridge's mappings (option `mappings`), holding `test.yaml`. */
  mappingsFolder: string;
  /** Current value of a counter or gauge from /metrics: summed over labels, or one `name{label="value"}`. */
  metric(name: string): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts a bridge on free ports against the test Kafka, with `mappings` (YAML
 * text) as its only mapping file. Stops with `stop()`; the caller decides
 * when (usually afterAll).
 */
export async function startBridge(
  mappings: string,
  overrides: ConfigOverrides = {},
): Promise<RunningBridge> {
  const folder = await mkdtemp(join(tmpdir(), 'bridge-mappings-'));
  await writeFile(join(folder, 'test.yaml'), mappings);
  const config = loadConfig({
    env: {},
    overrides: {
      ...overrides,
      kafka: { brokers: inject('kafkaBrokers').split(','), ...overrides.kafka },
      mqtt: { host: '127.0.0.1', port: 0, ...overrides.mqtt },
      websocket: { host: '127.0.0.1', port: 0, ...overrides.websocket },
      // each bridge its own consumer group, consuming at once
      downlink: { startDelayMs: 0, groupId: `test-${uniqueId()}`, ...overrides.downlink },
      http: { host: '127.0.0.1', port: 0 },
      mappings: folder,
      log: { level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false },
    },
  });
  const bridge = await Bridge.start(config, createLogger(config.log));
  const httpUrl = `http://127.0.0.1:${bridge.addresses.http.port}`;
  return {
    bridge,
    mqttPort: bridge.addresses.mqtt.port,
    websocketPort: bridge.addresses.websocket?.port ?? 0,
    httpUrl,
    mappingsFolder: folder,
    async metric(name: string) {
      const text = await (await fetch(`${httpUrl}/metrics`)).text();
      return text
        .split('\n')
        .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
        .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    },
    async stop() {
      await bridge.stop();
      await rm(folder, { recursive: true, force: true });
    },
  };
}

/** An MQTT.js client connected to the bridge; ended when the test finishes. */
export async function connectClient(
  port: number,
  options: IClientOptions = {},
  /** Runs before CONNECT is answered, e.g. to see messages a resumed session gets at once. */
  setUp: (client: MqttClient) => void = () => undefined,
): Promise<MqttClient> {
  const client = mqtt.connect({
    host: '127.0.0.1',
    port,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...options,
  });
  onTestFinished(async () => {
    await client.endAsync(true);
  });
  setUp(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => {
      resolve();
    });
    client.once('error', reject);
  });
  return client;
}

/** The CONNACK return/reason code a client gets with these options (0: connected). */
export async function connackOf(port: number, options: IClientOptions): Promise<number> {
  try {
    await connectClient(port, options);
    return 0;
  } catch (error) {
    return (error as ErrorWithReasonCode).code;
  }
}

/** A message an MQTT.js client received. */
export interface Received {
  topic: string;
  payload: string;
  packet: IPublishPacket;
}

/** Records every message `client` receives from now on, in order. */
export function collect(client: MqttClient): Received[] {
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    received.push({ topic, payload: payload.toString(), packet });
  });
  return received;
}

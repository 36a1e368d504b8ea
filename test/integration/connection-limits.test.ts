import { connect } from 'node:net';
import { MqttClient, type ErrorWithReasonCode, type IClientOptions } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { ConfigOverrides } from '../../src/config/load.js';
import { connackOf, connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { RawClient } from '../support/raw-client.js';
import { waitFor } from '../support/wait-for.js';

/*
 * Connection floods: mqtt.maxConnectRate, mqtt.maxConnectionsPerAddress and mqtt.maxConnections
 * refuse a connection when its socket is accepted, and tell the client at its CONNECT. Clients
 * from other addresses use other loopback addresses (on Linux every 127.x.y.z is this machine).
 */

const SERVER_BUSY = 0x89;
const QUOTA_EXCEEDED = 0x97;
const CONNECTION_RATE_EXCEEDED = 0x9f;
/** MQTT 3.1.1 CONNACK 0x03 Server unavailable. */
const SERVER_UNAVAILABLE = 3;

/** A bridge with `mqtt` options, stopped after the describe block that starts it. */
function bridgeWith(mqtt: ConfigOverrides['mqtt']): () => RunningBridge {
  let running: RunningBridge | undefined;
  beforeAll(async () => {
    running = await startBridge('uplink: []\n', { mqtt });
  });
  afterAll(async () => {
    await running?.stop();
  });
  return () => {
    if (running === undefined) throw new Error('bridge not started');
    return running;
  };
}

/** The CONNACK code an MQTT.js client gets connecting from `localAddress` (0: connected). */
async function connackFrom(
  localAddress: string,
  port: number,
  options: IClientOptions = {},
): Promise<number> {
  const client = new MqttClient(() => connect({ host: '127.0.0.1', port, localAddress }), {
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...options,
  });
  onTestFinished(async () => {
    await client.endAsync(true);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => {
        resolve();
      });
      client.once('error', reject);
    });
    return 0;
  } catch (error) {
    return (error as ErrorWithReasonCode).code;
  }
}

/** The CONNACK code a raw MQTT 5 CONNECT on an open socket gets. */
async function connackOfRaw(raw: RawClient, clientId: string): Promise<number> {
  const connack = await raw.handshake({ clientId, protocolVersion: 5 });
  return connack.reasonCode ?? -1;
}

/** `count` raw TCP connections from `localAddress`, opened in parallel. */
function openRaw(port: number, count: number, localAddress?: string): Promise<RawClient[]> {
  return Promise.all(Array.from({ length: count }, () => RawClient.connect(port, localAddress)));
}

describe('mqtt.maxConnectRate', () => {
  const running = bridgeWith({ maxConnectRate: 20 });

  it('refuses a CONNECT flood from one address beyond its burst with 0x9F, and counts it', async () => {
    const { mqttPort } = running();
    const flood = await openRaw(mqttPort, 100);
    const codes = await Promise.all(flood.map((raw, index) => connackOfRaw(raw, `flood-${index}`)));
    const accepted = codes.filter((code) => code === 0).length;
    const refused = codes.filter((code) => code === CONNECTION_RATE_EXCEEDED).length;
    // the burst (one second's worth), and what the rate refilled while the flood came in
    expect(accepted).toBeGreaterThanOrEqual(20);
    expect(accepted).toBeLessThan(40);
    expect(accepted + refused).toBe(100);
    await Promise.all(
      flood.filter((_, index) => codes[index] !== 0).map((raw) => raw.waitClosed()),
    );

    // another address has a rate of its own
    expect(await connackFrom('127.0.0.2', mqttPort)).toBe(0);
    await waitFor(
      async () =>
        (await running().metric(
          'bridge_mqtt_limit_refusals_total{limit="mqtt.maxConnectRate"}',
        )) === refused,
      { what: 'the refusals to be counted' },
    );
  });
});

describe('mqtt.maxConnectionsPerAddress', () => {
  const running = bridgeWith({ maxConnectionsPerAddress: 5 });

  it('refuses the 6th connection from one address with 0x97 (3.1.1: 0x03); closing one frees a slot', async () => {
    const { mqttPort } = running();
    const clients = await Promise.all(
      Array.from({ length: 5 }, (_, index) =>
        connectClient(mqttPort, { clientId: `per-${index}` }),
      ),
    );
    expect(await connackOf(mqttPort, { clientId: 'per-6-v5', protocolVersion: 5 })).toBe(
      QUOTA_EXCEEDED,
    );
    expect(await connackOf(mqttPort, { clientId: 'per-6-v4', protocolVersion: 4 })).toBe(
      SERVER_UNAVAILABLE,
    );
    // another address is not concerned
    expect(await connackFrom('127.0.0.3', mqttPort, { clientId: 'elsewhere' })).toBe(0);

    await clients[0]?.endAsync();
    await waitFor(
      async () => (await connackOf(mqttPort, { clientId: 'per-6', protocolVersion: 5 })) === 0,
      { what: 'the closed connection to free its slot' },
    );
    expect(
      await running().metric(
        'bridge_mqtt_limit_refusals_total{limit="mqtt.maxConnectionsPerAddress"}',
      ),
    ).toBeGreaterThanOrEqual(2);
  });
});

describe('mqtt.maxConnections', () => {
  const running = bridgeWith({ maxConnections: 10, connectTimeoutMs: 30_000 });

  it('counts sockets from their accept, refuses the 11th with 0x89 (3.1.1: 0x03), and frees slots of sockets that never sent CONNECT', async () => {
    const { mqttPort } = running();
    const connected = await Promise.all(
      Array.from({ length: 5 }, (_, index) =>
        connectClient(mqttPort, { clientId: `all-${index}` }),
      ),
    );
    // open, no CONNECT yet: counted all the same
    const silent = await openRaw(mqttPort, 5, '127.0.0.4');
    expect(await connackFrom('127.0.0.5', mqttPort, { clientId: 'eleventh' })).toBe(SERVER_BUSY);
    expect(
      await connackFrom('127.0.0.5', mqttPort, { clientId: 'eleventh-v4', protocolVersion: 4 }),
    ).toBe(SERVER_UNAVAILABLE);

    silent[0]?.destroy();
    await waitFor(
      async () => (await connackFrom('127.0.0.5', mqttPort, { clientId: 'eleventh' })) === 0,
      { what: 'the socket that never sent CONNECT to free its slot' },
    );
    expect(connected.every((client) => client.connected)).toBe(true);
  });
});

describe('a refused socket', () => {
  const running = bridgeWith({ maxConnections: 1, connectTimeoutMs: 30_000 });

  it('is closed within 2 s when it sends no CONNECT', async () => {
    const { mqttPort } = running();
    // the one slot taken by a socket waiting for its CONNECT (mqtt.connectTimeoutMs 30 s)
    await openRaw(mqttPort, 1);
    const refused = await RawClient.connect(mqttPort, '127.0.0.6');
    const opened = Date.now();
    await refused.waitClosed(5_000);
    const closedAfter = Date.now() - opened;
    expect(closedAfter).toBeGreaterThan(1_500);
    expect(closedAfter).toBeLessThan(3_000);
    expect(refused.packets).toEqual([]);
  });
});

describe('refused sockets held at once', () => {
  const running = bridgeWith({ maxConnections: 1, maxConnectRate: 0, connectTimeoutMs: 30_000 });

  it('destroys refused sockets beyond 1,000 waiting for their CONNECT at once, and counts them', async () => {
    const { mqttPort } = running();
    await openRaw(mqttPort, 1);
    const held: RawClient[] = [];
    for (let batch = 0; batch < 10; batch++) held.push(...(await openRaw(mqttPort, 100)));
    await waitFor(
      async () =>
        (await running().metric(
          'bridge_mqtt_limit_refusals_total{limit="mqtt.maxConnections"}',
        )) === 1_000,
      { what: '1,000 refusals' },
    );
    // they wait up to 2 s for their CONNECT: this must not take longer than that
    expect(held.filter((raw) => raw.closed)).toEqual([]);

    // closed at once, not after 2 s
    const beyond = await openRaw(mqttPort, 50);
    await Promise.all(beyond.map((raw) => raw.waitClosed(1_000)));
    expect(
      await running().metric('bridge_mqtt_limit_refusals_total{limit="mqtt.maxConnections"}'),
    ).toBe(1_050);
    // the held ones are answered at their CONNECT, and closed in time without one
    expect(await connackOfRaw(held.at(-1) as RawClient, 'held')).toBe(SERVER_BUSY);
    await Promise.all(held.map((raw) => raw.waitClosed(5_000)));
  });
});

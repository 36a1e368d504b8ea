import { rm } from 'node:fs/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startBridge, type RunningBridge } from '../support/bridge.js';
import { createTestCertificates, type TestCertificates } from '../support/certificates.js';
import { waitFor } from '../support/wait-for.js';

let certificates: TestCertificates;
let running: RunningBridge;

beforeAll(async () => {
  certificates = await createTestCertificates();
  running = await startBridge('uplink: []\n', {
    mqtts: { enabled: true, host: '127.0.0.1', port: 0 },
    wss: { enabled: true, host: '127.0.0.1', port: 0 },
    tls: { certFile: certificates.serverCertFile, keyFile: certificates.serverKeyFile },
  });
});

afterAll(async () => {
  await running.stop();
  await rm(certificates.folder, { recursive: true, force: true });
});

async function connect(url: string, options: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
  onTestFinished(async () => {
    await client.endAsync(true);
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => {
      resolve();
    });
    client.once('error', reject);
  });
  return client;
}

describe('TLS and secure WebSocket listeners', () => {
  it('carries MQTT over TLS and over wss, with the certificate checked by the clients', async () => {
    const { mqtts, wss } = running.bridge.addresses;
    const overTls = await connect(`mqtts://localhost:${mqtts?.port ?? 0}`, {
      ca: certificates.ca,
      clientId: 'tls-client',
      protocolVersion: 5,
    });
    const overWss = await connect(`wss://localhost:${wss?.port ?? 0}/mqtt`, {
      ca: certificates.ca,
      clientId: 'wss-client',
    });
    const received: string[] = [];
    overWss.on('message', (topic, payload) => received.push(`${topic}:${payload.toString()}`));
    await overWss.subscribeAsync('secure/+', { qos: 1 });
    await overTls.publishAsync('secure/a', 'hello', { qos: 1 });
    await waitFor(() => received.length === 1);
    expect(received).toEqual(['secure/a:hello']);
  });

  it('refuses a client that does not trust the certificate, and keeps serving others', async () => {
    const { mqtts } = running.bridge.addresses;
    await expect(
      connect(`mqtts://localhost:${mqtts?.port ?? 0}`, { clientId: 'untrusting' }),
    ).rejects.toThrow(/self.signed|unable to verify|certificate/i);
    await connect(`mqtts://localhost:${mqtts?.port ?? 0}`, {
      ca: certificates.ca,
      clientId: 'trusting',
    });
  });
});

describe('mutual TLS', () => {
  it('accepts only clients with a certificate signed by tls.caFile', async () => {
    const strict = await startBridge('uplink: []\n', {
      mqtts: { enabled: true, host: '127.0.0.1', port: 0 },
      tls: {
        certFile: certificates.serverCertFile,
        keyFile: certificates.serverKeyFile,
        caFile: certificates.caFile,
        requireClientCert: true,
      },
    });
    onTestFinished(() => strict.stop());
    const url = `mqtts://localhost:${strict.bridge.addresses.mqtts?.port ?? 0}`;
    await expect(connect(url, { ca: certificates.ca, clientId: 'no-cert' })).rejects.toThrow();
    const withCert = await connect(url, {
      ca: certificates.ca,
      cert: certificates.clientCert,
      key: certificates.clientKey,
      clientId: 'with-cert',
    });
    expect(withCert.connected).toBe(true);
  });
});

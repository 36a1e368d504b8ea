import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { hashPassword } from '../../src/auth/scram-verifier.js';
import { startBridge, type RunningBridge } from '../support/bridge.js';
import {
  createTestCertificates,
  issueClientCertificate,
  type TestCertificates,
} from '../support/certificates.js';

/*
 * tls.identity: a client certificate verified against tls.caFile names the user (its CN or its
 * first subjectAltName), with no password, over real TLS.
 */
let certificates: TestCertificates;
let authFile: string;

beforeAll(async () => {
  certificates = await createTestCertificates();
  const folder = await mkdtemp(join(tmpdir(), 'bridge-auth-cert-'));
  authFile = join(folder, 'auth.yaml');
  const bob = await hashPassword('bob-secret', { iterations: 4096 });
  await writeFile(
    authFile,
    [
      'users:',
      '  device-1: {}', // no password: certificate only
      '  bob:',
      `    password: '${bob}'`,
      'acl:',
      '  - allow: all',
      "    topics: ['devices/{username}/#']",
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(certificates.folder, { recursive: true, force: true });
});

async function bridgeWith(identity: 'cn' | 'san'): Promise<RunningBridge> {
  const running = await startBridge('uplink: []\n', {
    mqtts: { enabled: true, host: '127.0.0.1', port: 0 },
    tls: {
      certFile: certificates.serverCertFile,
      keyFile: certificates.serverKeyFile,
      caFile: certificates.caFile,
      identity,
    },
    auth: { file: authFile },
  });
  onTestFinished(() => running.stop());
  return running;
}

/** Connects over TLS; resolves with the client, or the CONNACK code it was refused with. */
async function connect(
  running: RunningBridge,
  options: IClientOptions,
): Promise<MqttClient | number> {
  const port = running.bridge.addresses.mqtts?.port ?? 0;
  const client = mqtt.connect(`mqtts://localhost:${port}`, {
    ca: certificates.ca,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    protocolVersion: 5,
    ...options,
  });
  onTestFinished(async () => {
    await client.endAsync(true);
  });
  return new Promise((resolve) => {
    client.once('connect', () => {
      resolve(client);
    });
    client.once('error', (error) => {
      resolve((error as Error & { code: number }).code);
    });
  });
}

function connected(result: MqttClient | number): MqttClient {
  if (typeof result === 'number') throw new Error(`refused with 0x${result.toString(16)}`);
  return result;
}

describe('certificate identity', () => {
  it('cn: the certificate names the user; no password; the ACL applies to that name', async () => {
    const running = await bridgeWith('cn');
    const { clientCert: cert, clientKey: key } = certificates; // CN=device-1
    const device = connected(await connect(running, { clientId: 'd1', cert, key }));
    // allowed: PUBACK without an error (publishAsync rejects on one)
    await device.publishAsync('devices/device-1/x', 'ok', { qos: 1 });
    await expect(device.publishAsync('devices/bob/x', 'no', { qos: 1 })).rejects.toMatchObject({
      code: 0x87,
    });
    // a user name sent with the certificate must be the certificate's
    expect(await connect(running, { clientId: 'd1b', cert, key, username: 'bob' })).toBe(0x86);
    expect(
      connected(await connect(running, { clientId: 'd1c', cert, key, username: 'device-1' }))
        .connected,
    ).toBe(true);
  });

  it('clients without a certificate still authenticate by password, not by name alone', async () => {
    const running = await bridgeWith('cn');
    // device-1 has no password: naming it without its certificate gets nowhere
    expect(await connect(running, { clientId: 'x', username: 'device-1', password: '' })).toBe(
      0x86,
    );
    const bob = await connect(running, { clientId: 'b', username: 'bob', password: 'bob-secret' });
    expect(connected(bob).connected).toBe(true);
    // and nothing at all: anonymous, refused (the file has no `anonymous`)
    expect(await connect(running, { clientId: 'nobody' })).toBe(0x87);
  });

  it('san: the first subjectAltName names the user', async () => {
    const running = await bridgeWith('san');
    const { cert, key } = await issueClientCertificate(
      certificates,
      'san-client',
      '/CN=ignored',
      'DNS:device-1,DNS:other',
    );
    const device = connected(await connect(running, { clientId: 'san-1', cert, key }));
    await device.publishAsync('devices/device-1/x', 'ok', { qos: 1 });
    await expect(device.publishAsync('devices/ignored/x', 'no', { qos: 1 })).rejects.toMatchObject({
      code: 0x87,
    });
  });
});

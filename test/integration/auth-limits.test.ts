import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IAuthPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/scram-verifier.js';
import { startBridge, type RunningBridge } from '../support/bridge.js';
import { RawClient } from '../support/raw-client.js';
import { ScramClient } from '../support/scram-client.js';

/*
 * Limits that belong to access: the CONNECT timeout covers the whole authentication exchange.
 */

const CONNECT_TIMEOUT_MS = 1_500;

let running: RunningBridge;
let folder: string;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'bridge-auth-limits-'));
  const file = join(folder, 'auth.yaml');
  await writeFile(
    file,
    `users:\n  sensor-1:\n    password: ${await hashPassword('s3cret', { iterations: 4096 })}\n`,
  );
  running = await startBridge('uplink: []\n', {
    auth: { file },
    mqtt: { connectTimeoutMs: CONNECT_TIMEOUT_MS },
  });
});

afterAll(async () => {
  await running.stop();
  await rm(folder, { recursive: true, force: true });
});

function scramConnect(raw: RawClient, scram: ScramClient, clientId: string): void {
  raw.expectVersion(5);
  raw.send(
    {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clientId,
      clean: true,
      keepalive: 0,
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.first() },
    },
    5,
  );
}

function authPacket(reasonCode: number, data: Buffer): IAuthPacket {
  return {
    cmd: 'auth',
    reasonCode,
    properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: data },
  };
}

describe('CONNECT timeout', () => {
  it('closes a client that goes silent in the middle of a SCRAM exchange', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    const opened = Date.now();
    scramConnect(raw, new ScramClient('sensor-1', 's3cret'), 'silent-auth');
    expect((await raw.next('auth')).reasonCode).toBe(0x18);
    // ... and then nothing: no client-final message
    await raw.waitClosed(CONNECT_TIMEOUT_MS + 3_000);
    const closedAfter = Date.now() - opened;
    expect(closedAfter).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 100);
    expect(raw.packets.filter((packet) => packet.cmd === 'connack')).toEqual([]);
  });

  it('lets an exchange finished within the timeout stay connected past it', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    const scram = new ScramClient('sensor-1', 's3cret');
    scramConnect(raw, scram, 'quick-auth');
    const challenge = await raw.next('auth');
    raw.send(
      authPacket(0x18, scram.final(challenge.properties?.authenticationData ?? Buffer.alloc(0))),
      5,
    );
    expect((await raw.next('connack')).reasonCode).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, CONNECT_TIMEOUT_MS + 500));
    expect(raw.closed).toBe(false);
    raw.send({ cmd: 'pingreq' }, 5);
    await raw.next('pingresp');
  });
});

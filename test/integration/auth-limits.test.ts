import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { IAuthPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../src/auth/scram-verifier.js';
import { Bridge } from '../../src/bridge.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { startBridge, type RunningBridge } from '../support/bridge.js';
import { RawClient } from '../support/raw-client.js';
import { ScramClient } from '../support/scram-client.js';

/*
 * Limits that belong to access: the CONNECT timeout covers the whole authentication exchange;
 * failed authentications are slowed per remote address and logged once a minute per address.
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

describe('re-authentication timeout', () => {
  it('disconnects (0x87) a client silent in the middle of re-authentication', async () => {
    const raw = await RawClient.connect(running.mqttPort);
    const scram = new ScramClient('sensor-1', 's3cret');
    scramConnect(raw, scram, 'silent-reauth');
    const challenge = await raw.next('auth');
    raw.send(
      authPacket(0x18, scram.final(challenge.properties?.authenticationData ?? Buffer.alloc(0))),
      5,
    );
    expect((await raw.next('connack')).reasonCode).toBe(0);
    const again = new ScramClient('sensor-1', 's3cret', 'another-client-nonce');
    const started = Date.now();
    raw.send(authPacket(0x19, again.first()), 5);
    expect((await raw.next('auth')).reasonCode).toBe(0x18);
    // ... and then nothing (keep alive 0: only the timeout can notice)
    const disconnect = await raw.next('disconnect', CONNECT_TIMEOUT_MS + 3_000);
    expect(disconnect.reasonCode).toBe(0x87);
    expect(Date.now() - started).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 100);
    await raw.waitClosed();
  });
});

describe('failed authentications from one address', () => {
  /** A bridge of its own (a fresh throttle) whose log lines the test reads. */
  async function bridgeWithLog(authFile: string) {
    const lines: Record<string, unknown>[] = [];
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    const config = loadConfig({
      env: {},
      overrides: {
        auth: { file: authFile },
        kafka: { brokers: inject('kafkaBrokers').split(',') },
        mqtt: { host: '127.0.0.1', port: 0 },
        websocket: { enabled: false },
        http: { host: '127.0.0.1', port: 0 },
        mappings: join(folder, 'mappings.yaml'),
        log: { level: 'warn', pretty: false },
      },
    });
    const bridge = await Bridge.start(config, createLogger(config.log, stream));
    return { bridge, port: bridge.addresses.mqtt.port, lines };
  }

  /** A 3.1.1 CONNECT with this password: the CONNACK return code and how long it took. */
  async function attempt(port: number, password: string): Promise<{ code: number; ms: number }> {
    const raw = await RawClient.connect(port);
    const started = performance.now();
    const connack = await raw.handshake({
      clientId: `guess-${Math.random().toString(36).slice(2)}`,
      protocolVersion: 4,
      ...{ username: 'sensor-1', password: Buffer.from(password) },
    });
    const ms = performance.now() - started;
    raw.destroy();
    return { code: connack.returnCode ?? -1, ms };
  }

  /** An MQTT 5 SCRAM CONNECT: the CONNACK reason code and the time from the proof to it. */
  async function scramAttempt(
    port: number,
    password: string,
  ): Promise<{ code: number; ms: number }> {
    const raw = await RawClient.connect(port);
    const scram = new ScramClient('sensor-1', password);
    scramConnect(raw, scram, `scram-guess-${Math.random().toString(36).slice(2)}`);
    const challenge = await raw.next('auth');
    const started = performance.now();
    raw.send(
      authPacket(0x18, scram.final(challenge.properties?.authenticationData ?? Buffer.alloc(0))),
      5,
    );
    const connack = await raw.next('connack');
    const ms = performance.now() - started;
    raw.destroy();
    return { code: connack.reasonCode ?? -1, ms };
  }

  it('get slower answers after a few, are logged once with the address, and a success resets them', async () => {
    await writeFile(join(folder, 'mappings.yaml'), 'uplink: []\n');
    const { bridge, port, lines } = await bridgeWithLog(join(folder, 'auth.yaml'));
    try {
      const answers = [];
      for (let index = 0; index < 6; index++) {
        // the fifth a wrong SCRAM proof (MQTT 5): both ways count for the address
        answers.push(await (index === 4 ? scramAttempt : attempt)(port, 'wrong'));
      }
      expect(answers.map((answer) => answer.code)).toEqual([4, 4, 4, 4, 0x86, 4]);
      const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0] = answers.map((answer) => answer.ms);
      const free = Math.max(a, b, c);
      // the first ones are answered at once, then each waits about twice as long as the last
      expect(d).toBeGreaterThan(2 * free);
      expect(e / d).toBeGreaterThan(1.5);
      expect(f / e).toBeGreaterThan(1.5);

      const reports = lines.filter((line) => String(line.msg).startsWith('failed authentications'));
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatchObject({ address: '127.0.0.1', failures: 1, level: 40 });

      // the right password waits its turn too (a quick answer would give it away), then gets in
      const right = await attempt(port, 's3cret');
      expect(right.code).toBe(0);
      expect(right.ms).toBeGreaterThan(2 * free);
      // and after it, the address starts afresh
      const again = await attempt(port, 'wrong');
      expect(again.code).toBe(4);
      expect(again.ms).toBeLessThan(d / 2);
      expect(
        lines.filter((line) => String(line.msg).startsWith('failed authentications')),
      ).toHaveLength(1);
    } finally {
      await bridge.stop();
    }
  });
});

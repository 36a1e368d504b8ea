/**
 * QoS 2 exactly once into Kafka under forced retransmissions (issue 5): a raw client sends every
 * PUBLISH again with DUP before PUBREL — after PUBREC, racing the first one's Kafka
 * acknowledgement, and after a reconnect of its persistent session (also one cut before any
 * PUBREC came back) — and every message must be in Kafka exactly once.
 */
import type { Packet, QoS } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBridge, type RunningBridge } from '../support/bridge.js';
import { createTopic, kafkaBrokers, uniqueId } from '../support/kafka-helpers.js';
import { RawClient } from '../support/raw-client.js';
import { readAllRecords, seqOf } from '../support/stream-devices.js';
import { waitFor } from '../support/wait-for.js';

let running: RunningBridge;
let topic: string;
const prefix = `qos2-${uniqueId()}`;

beforeAll(async () => {
  topic = await createTopic('qos2-dup', 2);
  running = await startBridge(
    `uplink:\n  - name: qos2\n    from: ${prefix}/{device}/data\n    to: { topic: ${topic}, key: '{device}' }\n`,
  );
});

afterAll(async () => {
  await running.stop();
});

type Version = 4 | 5;

/** A raw device with a persistent session that numbers its messages. */
class Qos2Device {
  readonly clientId = `qos2-dev-${uniqueId()}`;
  readonly version: Version;
  client!: RawClient;
  seq = 0;
  /** PUBLISH packets written (originals and DUPs). */
  transmissions = 0;
  pubrecs = 0;
  /** PUBREC / PUBCOMP reason codes ≥ 0x80 (MQTT 5). */
  readonly refusals: string[] = [];

  constructor(version: Version) {
    this.version = version;
  }

  get topic(): string {
    return `${prefix}/${this.clientId}/data`;
  }

  /** Connects (again) without clean start; returns the session present flag. */
  async connect(): Promise<boolean> {
    this.client = await RawClient.connect(running.mqttPort);
    const connack = await this.client.handshake({
      clientId: this.clientId,
      protocolVersion: this.version,
      clean: false,
      keepalive: 0,
      ...(this.version === 5 ? { properties: { sessionExpiryInterval: 600 } } : {}),
    });
    const code = this.version === 5 ? connack.reasonCode : connack.returnCode;
    if (code !== 0) throw new Error(`CONNACK ${code}`);
    return connack.sessionPresent;
  }

  publish(messageId: number, seq: number, dup: boolean, qos: QoS = 2): void {
    this.transmissions += 1;
    this.client.send(
      {
        cmd: 'publish',
        topic: this.topic,
        payload: Buffer.from(`${this.clientId}:${seq}:`),
        qos,
        dup,
        retain: false,
        messageId,
      },
      this.version,
    );
  }

  /** Takes the next `cmd` for `messageId` from what the server sent. */
  async take(cmd: 'pubrec' | 'pubcomp' | 'puback', messageId: number): Promise<void> {
    const packet = await waitFor(
      () => {
        const index = this.client.packets.findIndex(
          (candidate: Packet) =>
            candidate.cmd === cmd && 'messageId' in candidate && candidate.messageId === messageId,
        );
        return index === -1 ? undefined : this.client.packets.splice(index, 1)[0];
      },
      { timeoutMs: 15_000, what: `${this.clientId}: ${cmd} ${messageId}` },
    );
    if (cmd === 'pubrec') this.pubrecs += 1;
    const reasonCode = 'reasonCode' in packet ? packet.reasonCode : undefined;
    if (reasonCode !== undefined && reasonCode >= 0x80) {
      this.refusals.push(`${cmd} ${messageId}: 0x${reasonCode.toString(16)}`);
    }
  }

  async release(ids: number[]): Promise<void> {
    for (const messageId of ids) this.client.send({ cmd: 'pubrel', messageId }, this.version);
    for (const messageId of ids) await this.take('pubcomp', messageId);
  }
}

const N = 20;
const ids = Array.from({ length: N }, (_, index) => index + 1);

/** Each phase sends N new messages on packet ids 1…N (reused after PUBCOMP). */
async function phases(device: Qos2Device): Promise<number> {
  // 1. DUP after PUBREC, twice, before PUBREL.
  let base = device.seq;
  for (const id of ids) device.publish(id, base + id, false);
  for (const id of ids) await device.take('pubrec', id);
  for (const id of ids) device.publish(id, base + id, true);
  for (const id of ids) device.publish(id, base + id, true);
  for (const id of ids) await device.take('pubrec', id);
  for (const id of ids) await device.take('pubrec', id);
  await device.release(ids);
  device.seq += N;

  // 2. DUP right behind the original, racing its Kafka acknowledgement.
  base = device.seq;
  for (const id of ids) {
    device.publish(id, base + id, false);
    device.publish(id, base + id, true);
  }
  for (const id of ids) await device.take('pubrec', id);
  await device.release(ids);
  // The DUPs may have got a PUBREC of their own: not to be mistaken for later ones.
  for (let index = device.client.packets.length - 1; index >= 0; index--) {
    if (device.client.packets[index]?.cmd === 'pubrec') {
      device.client.packets.splice(index, 1);
      device.pubrecs += 1;
    }
  }
  device.seq += N;

  // 3. PUBREC received, connection lost before PUBREL; the session resumes and retransmits.
  base = device.seq;
  for (const id of ids) device.publish(id, base + id, false);
  for (const id of ids) await device.take('pubrec', id);
  device.client.destroy();
  let sessionPresent = await device.connect();
  for (const id of ids) device.publish(id, base + id, true);
  for (const id of ids) await device.take('pubrec', id);
  await device.release(ids);
  device.seq += N;

  // 4. Connection lost right after the PUBLISHes, before any PUBREC could come back.
  base = device.seq;
  for (const id of ids) device.publish(id, base + id, false);
  device.client.destroy();
  sessionPresent &&= await device.connect();
  for (const id of ids) device.publish(id, base + id, true);
  for (const id of ids) await device.take('pubrec', id);
  await device.release(ids);
  device.seq += N;

  // End marker, QoS 1: once it is acknowledged, whatever came before it is in Kafka too
  // (one key, one partition, records in publish order).
  device.publish(1, -1, false, 1);
  await device.take('puback', 1);
  return sessionPresent ? 1 : 0;
}

describe('faults: QoS 2 retransmissions', () => {
  it('QoS 2 with forced DUP retransmissions: every message exactly once in Kafka', async () => {
    const devices = [new Qos2Device(4), new Qos2Device(5)];
    for (const device of devices) await device.connect();
    const resumed = await Promise.all(devices.map((device) => phases(device)));

    const records = await readAllRecords(kafkaBrokers(), topic);
    const lines: string[] = [];
    const outcome: Record<string, unknown> = {};
    for (const device of devices) {
      const counts = new Map<number, number>();
      for (const record of records) {
        if (record.key !== device.clientId) continue;
        const seq = seqOf(record.value);
        if (seq !== undefined) counts.set(seq, (counts.get(seq) ?? 0) + 1);
      }
      const expected = Array.from({ length: device.seq }, (_, index) => index + 1);
      const missing = expected.filter((seq) => !counts.has(seq));
      const duplicates = [...counts].filter(([seq, count]) => seq > 0 && count > 1);
      const unexpected = [...counts.keys()].filter((seq) => seq !== -1 && !expected.includes(seq));
      const found = expected.length - missing.length;
      lines.push(
        `v${device.version === 5 ? '5' : '3.1.1'} sent=${device.seq} transmissions=${device.transmissions} ` +
          `pubrecs=${device.pubrecs} found=${found} duplicates=${duplicates.reduce((sum, [, count]) => sum + count - 1, 0)} ` +
          `missing=${missing.length} refusals=${device.refusals.length}`,
      );
      outcome[`v${device.version}`] = {
        missing,
        duplicates,
        unexpected,
        refusals: device.refusals,
        endMarkers: counts.get(-1) ?? 0,
      };
    }
    console.log(`[faults] qos2-dup: ${lines.join(' | ')} sessionsResumed=${resumed.join('/')}`);
    expect(resumed).toEqual([1, 1]);
    expect(outcome).toEqual({
      v4: { missing: [], duplicates: [], unexpected: [], refusals: [], endMarkers: 1 },
      v5: { missing: [], duplicates: [], unexpected: [], refusals: [], endMarkers: 1 },
    });
  }, 60_000);
});

/**
 * Devices that publish numbered QoS 1 streams through MQTT.js, keep track of what the bridge
 * acknowledged, and the check of what reached Kafka against that: every acknowledged message
 * present, duplicates only of messages that were transmitted more than once, per-key order.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { IDisconnectPacket, Packet } from 'mqtt-packet';
import { waitFor } from './wait-for.js';

export interface StreamDeviceOptions {
  port: number;
  clientId: string;
  /** MQTT topic the device publishes to. */
  topic: string;
  protocolVersion?: 4 | 5;
  /** Value bytes per message (the `clientId:seq:` prefix is padded with x); default 64. */
  payloadBytes?: number;
  /** QoS of the publishes; default 1. */
  qos?: 1 | 2;
  mqtt?: IClientOptions;
}

/** One device: message `seq` has the payload `clientId:seq:xxxx…`. */
export class StreamDevice {
  readonly clientId: string;
  readonly client: MqttClient;
  readonly topic: string;
  readonly payloadBytes: number;
  readonly qos: 1 | 2;
  /** Messages handed to MQTT.js so far: seq 0 … sent − 1. */
  sent = 0;
  readonly acked = new Set<number>();
  /** seq → error (e.g. "Publish error: Quota exceeded [0x97]", or "Connection closed"). */
  readonly failed = new Map<number, string>();
  /** seq → Date.now() when it was acknowledged or failed. */
  readonly answeredAt = new Map<number, number>();
  /** seq → how many times a PUBLISH carrying it went out on a socket. */
  readonly transmissions = new Map<number, number>();
  /** 'close' events of the connection (1 at the end when the test ends it). */
  closes = 0;
  /** Date.now() of the first 'close'. */
  firstCloseAt: number | undefined;
  /** DISCONNECT packets received from the server (MQTT 5). */
  readonly disconnects: IDisconnectPacket[] = [];
  pingResponses = 0;
  #timer: NodeJS.Timeout | undefined;
  #ended = false;

  constructor(options: StreamDeviceOptions) {
    this.clientId = options.clientId;
    this.topic = options.topic;
    this.payloadBytes = options.payloadBytes ?? 64;
    this.qos = options.qos ?? 1;
    this.client = mqtt.connect({
      host: '127.0.0.1',
      port: options.port,
      clientId: options.clientId,
      protocolVersion: options.protocolVersion ?? 4,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      ...options.mqtt,
    });
    this.client.on('error', () => undefined); // counted as closes; the test decides
    this.client.on('close', () => {
      this.closes += 1;
      this.firstCloseAt ??= Date.now();
    });
    this.client.on('disconnect', (packet) => this.disconnects.push(packet));
    this.client.on('packetreceive', (packet: Packet) => {
      if (packet.cmd === 'pingresp') this.pingResponses += 1;
    });
    this.client.on('packetsend', (packet: Packet) => {
      if (packet.cmd !== 'publish' || packet.topic !== this.topic) return;
      const seq = seqOf(packet.payload);
      if (seq !== undefined) this.transmissions.set(seq, (this.transmissions.get(seq) ?? 0) + 1);
    });
  }

  /** Connects (first CONNACK). */
  async connected(): Promise<this> {
    if (this.client.connected) return this;
    await new Promise<void>((resolve, reject) => {
      this.client.once('connect', () => {
        resolve();
      });
      this.client.once('error', reject);
    });
    return this;
  }

  /** sent/acked/failed/outstanding, for reports. */
  summary(): string {
    return `${this.sent}/${this.acked.size}/${this.failed.size}/${this.outstanding}`;
  }

  /** Messages handed over and neither acknowledged nor failed. */
  get outstanding(): number {
    return this.sent - this.acked.size - this.failed.size;
  }

  payload(seq: number): Buffer {
    const prefix = `${this.clientId}:${seq}:`;
    return Buffer.from(prefix.padEnd(Math.max(this.payloadBytes, prefix.length), 'x'));
  }

  /** Hands the next message to MQTT.js (at the device's QoS). */
  publishNext(): void {
    const seq = this.sent++;
    this.client.publish(this.topic, this.payload(seq), { qos: this.qos }, (error) => {
      this.answeredAt.set(seq, Date.now());
      if (!error) this.acked.add(seq);
      else {
        const code = (error as { code?: unknown }).code;
        const suffix = typeof code === 'number' ? ` [0x${code.toString(16)}]` : '';
        this.failed.set(seq, `${error.message}${suffix}`);
      }
    });
  }

  /** Publishes `count` messages at once (MQTT.js queues what the socket does not take). */
  burst(count: number): void {
    for (let i = 0; i < count; i++) this.publishNext();
  }

  /**
   * Every `intervalMs`, publishes up to `perTick` messages (default 1) while fewer than `window`
   * are outstanding, until stopStream() (or `max` messages in all).
   */
  stream({
    intervalMs,
    window,
    perTick = 1,
    max = Infinity,
  }: {
    intervalMs: number;
    window: number;
    perTick?: number;
    max?: number;
  }): void {
    this.stopStream();
    this.#timer = setInterval(() => {
      for (let i = 0; i < perTick && this.outstanding < window && this.sent < max; i++) {
        this.publishNext();
      }
      if (this.sent >= max) this.stopStream();
    }, intervalMs);
  }

  stopStream(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Waits until nothing is outstanding. */
  async settled(timeoutMs: number): Promise<void> {
    await waitFor(() => this.outstanding === 0, {
      timeoutMs,
      intervalMs: 50,
      what: `${this.clientId}: ${this.outstanding} of ${this.sent} messages still unacknowledged`,
    });
  }

  async end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    this.stopStream();
    await this.client.endAsync(true);
  }
}

/** The sequence number in a payload `clientId:seq:…`. */
export function seqOf(payload: Buffer | string | null | undefined): number | undefined {
  if (payload === null || payload === undefined) return undefined;
  const text = payload.toString('latin1', 0, Math.min(payload.length, 200));
  const seq = Number(text.split(':')[1]);
  return Number.isInteger(seq) ? seq : undefined;
}

export interface StreamRecord {
  partition: number;
  offset: number;
  key: string;
  value: Buffer;
}

/**
 * Every record of `topic` on `brokers`, in partition and offset order: reads from the beginning
 * up to the high watermarks taken when called.
 */
export async function readAllRecords(
  brokers: string[],
  topic: string,
  timeoutMs = 30_000,
  /** `ssl` / `sasl` of a secured Kafka. */
  security: Pick<KafkaConfig, 'ssl' | 'sasl'> = {},
): Promise<StreamRecord[]> {
  const kafka = new Kafka({
    clientId: `read-all-${randomBytes(4).toString('hex')}`,
    brokers,
    logLevel: logLevel.NOTHING,
    ...security,
  });
  const admin = kafka.admin();
  await admin.connect();
  let highs: Map<number, number>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    highs = new Map(offsets.map(({ partition, high }) => [partition, Number(high)]));
  } finally {
    await admin.disconnect();
  }
  const records: StreamRecord[] = [];
  const done = (): boolean =>
    [...highs].every(([partition, high]) => {
      const last = records.findLast((record) => record.partition === partition);
      return high === 0 || (last !== undefined && last.offset >= high - 1);
    });
  if (done()) return records;
  const consumer = kafka.consumer({
    groupId: `read-all-${randomBytes(5).toString('hex')}`,
    maxWaitTimeInMs: 250,
    maxBytes: 64 * 1024 * 1024,
    maxBytesPerPartition: 16 * 1024 * 1024,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`readAllRecords(${topic}): ${records.length} records in ${timeoutMs} ms`));
      }, timeoutMs);
      consumer
        .run({
          autoCommit: false,
          eachBatch: ({ batch }) => {
            for (const message of batch.messages) {
              records.push({
                partition: batch.partition,
                offset: Number(message.offset),
                key: message.key?.toString() ?? '',
                value: message.value ?? Buffer.alloc(0),
              });
            }
            if (done()) resolve();
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return records
    .filter((record) => record.offset < (highs.get(record.partition) ?? 0))
    .sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

export interface StreamReport {
  /** Messages handed to the clients. */
  sent: number;
  /** Acknowledged with success (PUBACK < 0x80). */
  acked: number;
  /** Refused (PUBACK ≥ 0x80) or dropped by the client (e.g. connection closed). */
  failed: number;
  /** Never answered. */
  unanswered: number;
  /** Transmitted more than once by the clients (after a reconnect). */
  retransmitted: number;
  /** Records of these devices in Kafka. */
  records: number;
  /** Distinct messages in Kafka. */
  found: number;
  /** Records beyond the first of a message. */
  duplicates: number;
  /** Duplicates of messages the clients transmitted only once (the bridge repeated them). */
  unexplainedDuplicates: number;
  /** In Kafka, never acknowledged. */
  foundUnacked: number;
  /** Acknowledged and NOT in Kafka — a broken guarantee. */
  lostAcked: number;
  /** First occurrences of one key out of order. */
  orderViolations: number;
  /** Records under a wrong key, or not from these devices. */
  foreign: number;
  /** Examples of what went wrong. */
  examples: string[];
}

/** Checks the records of a topic against what the devices sent and had acknowledged. */
export function checkStreams(devices: StreamDevice[], records: StreamRecord[]): StreamReport {
  const byId = new Map(devices.map((device) => [device.clientId, device]));
  const seen = new Map<string, Map<number, number>>();
  const highest = new Map<string, number>();
  const examples: string[] = [];
  const note = (text: string): void => {
    if (examples.length < 10) examples.push(text);
  };
  let foreign = 0;
  let orderViolations = 0;
  let matched = 0;
  for (const record of records) {
    const [clientId] = record.value.toString('latin1', 0, 100).split(':');
    const seq = seqOf(record.value);
    const device = clientId === undefined ? undefined : byId.get(clientId);
    if (device === undefined || seq === undefined || record.key !== clientId) {
      foreign += 1;
      note(`foreign record p${record.partition}@${record.offset} key ${record.key}`);
      continue;
    }
    matched += 1;
    let counts = seen.get(device.clientId);
    if (!counts) seen.set(device.clientId, (counts = new Map<number, number>()));
    const before = counts.get(seq) ?? 0;
    counts.set(seq, before + 1);
    if (before > 0) continue;
    const top = highest.get(device.clientId) ?? -1;
    if (seq < top) {
      orderViolations += 1;
      note(`${device.clientId}: ${seq} after ${top} (p${record.partition}@${record.offset})`);
    } else highest.set(device.clientId, seq);
  }
  let sent = 0;
  let acked = 0;
  let failed = 0;
  let retransmitted = 0;
  let found = 0;
  let duplicates = 0;
  let unexplainedDuplicates = 0;
  let foundUnacked = 0;
  let lostAcked = 0;
  for (const device of devices) {
    sent += device.sent;
    acked += device.acked.size;
    failed += device.failed.size;
    const counts = seen.get(device.clientId) ?? new Map<number, number>();
    for (const times of device.transmissions.values()) if (times > 1) retransmitted += 1;
    for (const [seq, count] of counts) {
      found += 1;
      duplicates += count - 1;
      if (count > 1 && (device.transmissions.get(seq) ?? 0) <= 1) {
        unexplainedDuplicates += count - 1;
        note(`${device.clientId}: ${seq} ${count}× in Kafka, transmitted once`);
      }
      if (!device.acked.has(seq)) foundUnacked += 1;
    }
    for (const seq of device.acked) {
      if (!counts.has(seq)) {
        lostAcked += 1;
        note(`${device.clientId}: ${seq} acknowledged, not in Kafka`);
      }
    }
  }
  return {
    sent,
    acked,
    failed,
    unanswered: sent - acked - failed,
    retransmitted,
    records: matched,
    found,
    duplicates,
    unexplainedDuplicates,
    foundUnacked,
    lostAcked,
    orderViolations,
    foreign,
    examples,
  };
}

/** One compact line of counts for the issue notes. */
export function reportLine(
  test: string,
  report: StreamReport,
  extra: Record<string, unknown> = {},
): string {
  const { examples, ...counts } = report;
  const fields = { ...counts, ...extra };
  const text = Object.entries(fields)
    .map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return `[faults] ${test}: ${text}${examples.length > 0 ? ` | ${examples.join('; ')}` : ''}`;
}

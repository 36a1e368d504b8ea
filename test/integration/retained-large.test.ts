/**
 * A large retained set (issue 14) against a real bridge with real MQTT clients: kept within
 * retained.maxBytes, and delivered whole to `#` subscribers that read it, paced by their
 * sockets — a small mqtt.maxWriteBuffer and mqtt.maxQueuedMessages no longer cut it short —
 * while a subscriber that stops reading holds up no one and loses nothing.
 */
import { connect, type Socket } from 'node:net';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { waitFor } from '../support/wait-for.js';

const PUBLISHED = 100_000;
/** What retained.maxBytes leaves room for: every message has the same size. */
const KEPT = 70_000;
const PAYLOAD = Buffer.alloc(32, 'v');
const topicOf = (i: number): string =>
  `r/${String(i % 100).padStart(2, '0')}/${String(i).padStart(6, '0')}`;
/** Every other one at QoS 1, so that a QoS 1 subscription gets both QoS 0 and QoS 1 messages. */
const publishedQos = (topic: string): 0 | 1 => (Number(topic.slice(-6)) % 2) as 0 | 1;
const BYTES_EACH = Buffer.byteLength(topicOf(0)) + PAYLOAD.length;
const DELIVERY_TIMEOUT = { timeoutMs: 25_000 };

let running: RunningBridge;

/** A TCP connection to the bridge that has sent CONNECT (3.1.1, keep alive off). */
async function rawConnection(clientId: string): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port: running.mqttPort });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined); // a reset at the end is no failure
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clientId,
      clean: true,
      keepalive: 0,
    }),
  );
  return socket;
}

beforeAll(async () => {
  running = await startBridge('uplink: []\n', {
    retained: { maxBytes: BYTES_EACH * KEPT },
    // 100,000 publishes from one connection, as fast as it can send them
    mqtt: { maxWriteBuffer: 4_096, maxQueuedMessages: 100, maxPublishRate: 0 },
  });
  const publisher = await rawConnection('retainer');
  publisher.resume(); // PUBACKs read and ignored
  const packets: Buffer[] = [];
  for (let i = 0; i < PUBLISHED; i++) {
    const topic = topicOf(i);
    const qos = publishedQos(topic);
    packets.push(
      mqttPacket.generate({
        cmd: 'publish',
        topic,
        payload: PAYLOAD,
        qos,
        retain: true,
        dup: false,
        ...(qos === 1 ? { messageId: (i % 65_535) + 1 } : {}),
      }),
    );
  }
  publisher.write(Buffer.concat(packets));
  await waitFor(
    async () =>
      (await running.metric('bridge_mqtt_retained_messages')) +
        (await running.metric('bridge_mqtt_retained_refused_total')) ===
      PUBLISHED,
    { timeoutMs: 25_000, what: 'every retained publish taken or refused' },
  );
  publisher.destroy();
}, 60_000);

afterAll(async () => {
  await running.stop();
});

/** Publishes a raw connection receives once it reads, counted by topic. */
function countPublishes(socket: Socket): Map<string, number> {
  const counts = new Map<string, number>();
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (packet: Packet) => {
    if (packet.cmd === 'publish') counts.set(packet.topic, (counts.get(packet.topic) ?? 0) + 1);
  });
  socket.on('data', (chunk: Buffer) => parser.parse(chunk));
  socket.resume();
  return counts;
}

/** An MQTT.js client (MQTT 5, acknowledging QoS 1 itself) subscribed to `#`: what it receives. */
async function reader(clientId: string, qos: 0 | 1): Promise<IPublishPacket[]> {
  const received: IPublishPacket[] = [];
  const client = await connectClient(running.mqttPort, { clientId, protocolVersion: 5 });
  client.on('message', (_topic, _payload, packet) => received.push(packet));
  await client.subscribeAsync('#', { qos, properties: { subscriptionIdentifier: 7 } });
  return received;
}

const total = (counts: Map<string, number>): number =>
  [...counts.values()].reduce((sum, count) => sum + count, 0);

describe('a large retained set', () => {
  it('is kept within retained.maxBytes, the publishes beyond it refused and counted', async () => {
    // every message is BYTES_EACH bytes: KEPT of them fill maxBytes exactly
    expect(await running.metric('bridge_mqtt_retained_messages')).toBe(KEPT);
    expect(await running.metric('bridge_mqtt_retained_refused_total')).toBe(PUBLISHED - KEPT);
  });

  it('reaches `#` subscribers whole at QoS 0 and QoS 1 while one that stops reading holds up no one', async () => {
    // A subscriber that reads nothing after CONNECT: three filters matching everything ask for
    // three times the set, far more than the kernel's socket buffers take.
    const stalled = await rawConnection('stalled');
    onTestFinished(() => {
      stalled.destroy();
    });
    stalled.pause();
    stalled.write(
      mqttPacket.generate({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: ['#', 'r/#', '+/+/+'].map((topic) => ({ topic, qos: 0 as const })),
      }),
    );

    const atQos0 = await reader('reader-0', 0);
    const atQos1 = await reader('reader-1', 1);
    await waitFor(() => atQos0.length >= KEPT && atQos1.length >= KEPT, {
      ...DELIVERY_TIMEOUT,
      what: 'every retained message at both readers',
    });
    const kept = new Set(atQos0.map(({ topic }) => topic));
    expect(kept.size).toBe(KEPT);
    expect(atQos0).toHaveLength(KEPT);
    expect(new Set(atQos1.map(({ topic }) => topic))).toEqual(kept);
    expect(atQos1).toHaveLength(KEPT);
    const asRetained = ({ retain, properties }: IPublishPacket): boolean =>
      retain && properties?.subscriptionIdentifier === 7;
    expect(atQos0.every(asRetained) && atQos1.every(asRetained)).toBe(true);
    expect(atQos0.every(({ qos }) => qos === 0)).toBe(true);
    // the QoS 1 subscription gets each at the QoS it was published with
    expect(atQos1.every(({ topic, qos }) => qos === publishedQos(topic))).toBe(true);
    expect(atQos1.some(({ qos }) => qos === 1)).toBe(true);

    // The stalled subscriber's messages waited for it: all arrive once it reads.
    const stalledCounts = countPublishes(stalled);
    await waitFor(() => total(stalledCounts) >= 3 * KEPT, {
      ...DELIVERY_TIMEOUT,
      what: 'every retained message at the subscriber that was stalled, once per filter',
    });
    expect(new Set(stalledCounts.keys())).toEqual(kept);
    expect([...stalledCounts.values()].every((count) => count === 3)).toBe(true);
    expect(await running.metric('bridge_mqtt_messages_dropped_total')).toBe(0);
  });
});

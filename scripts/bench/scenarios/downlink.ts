/**
 * Downlink to online devices: a bare @platformatic/kafka producer (the cheapest in CPU, so it
 * takes the least from the bridge on shared cores) writes commands (batches of 1,000, key =
 * device) to a topic a downlink rule maps to devices/{key}/commands; subscribed devices in
 * generator processes receive them. Messages per second from the first produce to the last
 * arrival; latency from the send time written in each value to its arrival.
 */
import { randomBytes } from 'node:crypto';
import { BenchChild } from '../child.js';
import { Generators } from '../load.js';
import { PacketType, subscribePacket, WireConnection } from '../mqtt-wire.js';
import { rssBytes } from '../os-stats.js';
import { stampedValue } from '../payloads.js';
import { round, type Row, type ScenarioResult } from '../report.js';
import { droppedByBridge, startBridgeServer, type Server } from '../servers.js';
import { cpuFigures, Meters, onServer, sleep, type Context, type Scenario } from './context.js';

const DEVICES = 100;
const PAYLOAD = 256;

export const downlinkQos0: Scenario = {
  name: 'downlink-qos0',
  run: (context) => downlink(context, 0),
};
export const downlinkQos1: Scenario = {
  name: 'downlink-qos1',
  run: (context) => downlink(context, 1),
};

async function downlink(context: Context, qos: 0 | 1): Promise<ScenarioResult> {
  const { kafka } = context;
  const records = context.options.downlinkMessages;
  const topic = await kafka.newTopic();
  const row = await onServer(
    'bridge',
    () =>
      startBridgeServer({
        brokers: kafka.brokers,
        mappings: `downlink:\n  - name: commands\n    from: { topic: ${topic}, start: latest }\n    to: { topic: 'devices/{key}/commands', qos: ${qos} }\n`,
        env: {
          BRIDGE_DOWNLINK_START_DELAY_MS: '0',
          BRIDGE_DOWNLINK_GROUP_ID: `bench-${randomBytes(4).toString('hex')}`,
        },
      }),
    (server) => measure(context, server, topic, qos),
    context,
  );
  return {
    name: `downlink-qos${qos}`,
    title: `Downlink, QoS ${qos}, to online devices`,
    parameters:
      `${records.toLocaleString('en-US')} records of ${PAYLOAD} bytes produced by a bare @platformatic/kafka producer in batches of 1,000 ` +
      `to a 6-partition topic; a downlink rule maps them to devices/{key}/commands (QoS ${qos}); ${DEVICES} devices ` +
      `subscribed with QoS ${qos} in ${context.options.procs} generator processes. Per second: messages received, from the ` +
      'first produce to the last arrival; latency: produce to receive. No peer does Kafka → MQTT.',
    rows: [row],
    ratios: {},
  };
}

async function measure(context: Context, server: Server, topic: string, qos: 0 | 1): Promise<Row> {
  const records = context.options.downlinkMessages;
  await untilConsuming(context, server.port, topic);
  const devices = new Generators({
    mode: 'subscribe',
    port: server.port,
    procs: context.options.procs,
    connections: DEVICES,
    prefix: 'd',
    qos,
    messages: records,
  });
  const producer = new BenchChild<{ records: number; seconds: number }>(
    'scripts/bench/peers/bare-platformatic.ts',
    [
      ...['--brokers', context.kafka.brokers, '--topic', topic, '--records', String(records)],
      ...['--keys', String(DEVICES), '--prefix', 'd', '--payload', String(PAYLOAD), '--stamp'],
    ],
  );
  try {
    await producer.ready;
    let meters: Meters | undefined;
    let wentAt = 0;
    const outcome = await devices.run(() => {
      meters = new Meters(server, context, true);
      wentAt = performance.timeOrigin + performance.now();
      producer.send('go');
    });
    await devices.close();
    const produced = await producer.result;
    await producer.close();
    const received = outcome.total('received');
    const lastAt = Math.max(...outcome.results.map((result) => result.lastAt ?? 0));
    return {
      peer: 'bridge',
      count: received,
      rate: Math.round(received / ((lastAt - wentAt) / 1000)),
      p50Ms: outcome.latency.percentile(50),
      p99Ms: outcome.latency.percentile(99),
      ...cpuFigures(meters as Meters, outcome, received, true),
      rssMb: Math.round(rssBytes(server.pids()) / 2 ** 20),
      extra: {
        lost: records - received,
        ...(await droppedByBridge(server)),
        'produced/s': round(produced.records / produced.seconds, 0),
      },
    };
  } finally {
    devices.kill();
    producer.kill();
  }
}

/**
 * Produces a command for a probe device until it arrives: the bridge's consumer has joined its
 * group and reads the topic, so the records measured do not wait for that.
 */
async function untilConsuming(context: Context, port: number, topic: string): Promise<void> {
  const probe = await WireConnection.open('127.0.0.1', port, 'probe', 300);
  const producer = context.kafka.kafka.producer();
  await producer.connect();
  try {
    const suback = probe.next(PacketType.suback);
    probe.socket.write(subscribePacket(1, 'devices/probe/commands', 0));
    await suback;
    const arrived = new Promise<'arrived'>((resolve) => {
      probe.onPacket = (packet) => {
        if (packet.type === PacketType.publish) resolve('arrived');
      };
    });
    const giveUp = performance.now() + 120_000;
    for (;;) {
      if (performance.now() > giveUp) throw new Error('the downlink consumer never delivered');
      await producer.send({ topic, messages: [{ key: 'probe', value: stampedValue(16) }] });
      if ((await Promise.race([arrived, sleep(500)])) === 'arrived') return;
    }
  } finally {
    probe.close();
    await producer.disconnect();
  }
}

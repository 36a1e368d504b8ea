/**
 * Uplink: QoS 1 durable (acknowledged once Kafka has the record) and QoS 0 (records arriving in
 * Kafka per second), for the bridge and its peers on the same load, and the bare producers as
 * the Kafka-side ceiling.
 */
import { BenchChild, runTogether } from '../child.js';
import { runLoad } from '../load.js';
import { CpuMeter, rssBytes } from '../os-stats.js';
import { ratiosToPeers, round, type Row } from '../report.js';
import {
  droppedByBridge,
  startAedesGlue,
  startBridgeServer,
  startMosquitto,
  type Server,
} from '../servers.js';
import {
  chosen,
  cpuFigures,
  durableLoad,
  Meters,
  measureQos1,
  notChosen,
  onServer,
  sleep,
  uplinkRule,
  type Context,
  type Scenario,
} from './context.js';

const LOAD_TEXT =
  '50 connections, 32 QoS 1 publishes in flight each, 256-byte payloads; one rule to a 6-partition topic, key = client id';

export const uplinkQos1: Scenario = {
  name: 'uplink-qos1',
  async run(context) {
    const { messages, procs, capSeconds } = context.options;
    const { kafka } = context;
    let glueTopic: string | undefined;
    /** The load; `topic`: where the server writes (undefined: it keeps messages). */
    const measure = (server: Server, topic?: string): Promise<Row> =>
      measureQos1(
        context,
        server,
        durableLoad(context, server.port, messages),
        topic !== undefined,
        topic,
      );
    const rows: Row[] = [
      await onServer(
        'bridge',
        async () =>
          startBridgeServer({ brokers: kafka.brokers, mappings: uplinkRule(kafka.topic) }),
        (server) => measure(server, kafka.topic),
        context,
      ),
      await onServer('mosquitto', startMosquitto, (server) => measure(server), context),
      await onServer(
        'aedes-glue',
        async () => {
          glueTopic = await kafka.newTopic();
          return startAedesGlue(kafka.brokers, glueTopic);
        },
        (server) => measure(server, glueTopic),
        context,
      ),
      ...(await bareProducers(context, messages)),
    ];
    return {
      name: this.name,
      title: 'Uplink, QoS 1 durable',
      parameters:
        `${LOAD_TEXT}; ${messages.toLocaleString('en-US')} messages from ${procs} generator processes ` +
        `(no new publish after ${capSeconds} s). Rate: PUBACKs per second. Mosquitto keeps messages in memory ` +
        '(the MQTT ceiling); aedes-glue acknowledges after producer.send; the bare producers send the ' +
        'same records in batches of 1,000 (the Kafka-side ceiling).',
      rows,
      ratios: ratiosToPeers(rows),
    };
  },
};

export const uplinkQos0: Scenario = {
  name: 'uplink-qos0',
  async run(context) {
    const { messages, procs } = context.options;
    const { kafka } = context;
    const bare = context.done
      .get('uplink-qos1')
      ?.rows.filter((row) => row.peer.startsWith('bare-'));
    const glueTopic = await kafka.newTopic();
    const rows: Row[] = [
      await onServer(
        'bridge',
        async () =>
          startBridgeServer({ brokers: kafka.brokers, mappings: uplinkRule(kafka.topic) }),
        (server) => measureQos0(context, server, kafka.topic),
        context,
      ),
      await onServer(
        'mosquitto',
        startMosquitto,
        (server) => measureQos0(context, server),
        context,
      ),
      await onServer(
        'aedes-glue',
        () => startAedesGlue(kafka.brokers, glueTopic),
        (server) => measureQos0(context, server, glueTopic),
        context,
      ),
      ...(bare && bare.length > 0
        ? bare.map((row) => ({ ...row, note: 'from the QoS 1 scenario (same records)' }))
        : await bareProducers(context, messages)),
    ];
    return {
      name: this.name,
      title: 'Uplink, QoS 0',
      parameters:
        `50 connections writing QoS 0 publishes as fast as TCP takes them (32 per write), 256-byte ` +
        `payloads, ${messages.toLocaleString('en-US')} messages from ${procs} generator processes; the same rule. ` +
        'Rate: records arriving in Kafka per second (end offsets, polled every 100 ms; the bridge drops QoS 0 ' +
        'while kafka.maxPendingRecords records wait for Kafka, see docs/guarantees.md); for Mosquitto, ' +
        'publishes read per second (each connection ends with a PINGREQ, answered once the ones before it were read).',
      rows,
      ratios: ratiosToPeers(rows),
    };
  },
};

/** QoS 0; with a topic, the rate is that of records arriving there (lost ones counted). */
async function measureQos0(context: Context, server: Server, topic?: string): Promise<Row> {
  const load = { ...durableLoad(context, server.port, context.options.messages), qos: 0 as const };
  await runLoad({ ...load, prefix: 'warm', messages: Math.min(20_000, context.options.messages) });
  if (topic) await settled(context, topic);
  const meters = new Meters(server, context, topic !== undefined);
  const before = topic ? await context.kafka.records(topic) : 0;
  let wentAt = 0;
  const outcome = await runLoad(load, () => (wentAt = performance.now()));
  const sent = outcome.total('sent');
  let arrived = sent;
  let seconds = outcome.seconds;
  if (topic) {
    const arrival = await arrivals(context, topic, before, sent);
    arrived = arrival.records;
    seconds = (arrival.lastAt - wentAt) / 1000;
  }
  return {
    peer: server.name,
    count: arrived,
    rate: Math.round(arrived / seconds),
    ...cpuFigures(meters, outcome, arrived, topic !== undefined),
    rssMb: Math.round(rssBytes(server.pids()) / 2 ** 20),
    ...(topic ? { extra: { lost: sent - arrived, ...(await droppedByBridge(server)) } } : {}),
  };
}

/** Polls the topic until `expected` records arrived or none came for 3 s. */
async function arrivals(
  context: Context,
  topic: string,
  before: number,
  expected: number,
): Promise<{ records: number; lastAt: number }> {
  let records = (await context.kafka.records(topic)) - before;
  let lastAt = performance.now();
  while (records < expected && performance.now() - lastAt < 3_000) {
    await sleep(100);
    const now = (await context.kafka.records(topic)) - before;
    if (now > records) {
      records = now;
      lastAt = performance.now();
    }
  }
  return { records, lastAt };
}

/** Waits until the topic stops growing (the warm-up's records are in). */
async function settled(context: Context, topic: string): Promise<void> {
  let last = -1;
  for (;;) {
    const now = await context.kafka.records(topic);
    if (now === last) return;
    last = now;
    await sleep(300);
  }
}

/** The bare producers: the bridge's records, nothing else, in batches of 1,000. */
export async function bareProducers(context: Context, records: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [peer, module] of [
    ['bare-kafkajs', 'kafkajs'],
    ['bare-platformatic', '@platformatic/kafka'],
  ] as const) {
    if (!chosen(context, peer)) {
      rows.push(notChosen(peer));
      continue;
    }
    try {
      await import(module);
    } catch {
      context.log(`${peer}: skipped: ${module} is not installed`);
      rows.push({ peer, skipped: `skipped: ${module} is not installed (npm install)` });
      continue;
    }
    context.log(`${peer}: running`);
    rows.push(await bareProducer(context, peer, records));
  }
  return rows;
}

interface BareResult {
  records: number;
  seconds: number;
  cpuSeconds: number;
}

async function bareProducer(context: Context, peer: string, records: number): Promise<Row> {
  const { kafka } = context;
  const topic = await kafka.newTopic();
  const args = ['--brokers', kafka.brokers, '--topic', topic, '--records', String(records)];
  const child = new BenchChild<BareResult>(`scripts/bench/peers/${peer}.ts`, args);
  let meters: CpuMeter | undefined;
  let producerCpu: CpuMeter | undefined;
  const { results } = await runTogether([child], () => {
    meters = new CpuMeter(kafka.pids);
    producerCpu = new CpuMeter([child.process.pid ?? 0]);
  });
  const rss = rssBytes([child.process.pid ?? 0]);
  const kafkaSeconds = meters?.seconds() ?? 0;
  const procSeconds = producerCpu?.seconds() ?? 0;
  await child.close();
  const result = results[0] as BareResult;
  const perMessage = (seconds: number): number => round((seconds * 1e6) / records, 1);
  return {
    peer,
    count: records,
    rate: Math.round(records / result.seconds),
    // /proc, read when its result arrived; its own getrusage if the process was gone already
    cpuUs: perMessage(procSeconds > 0 ? procSeconds : result.cpuSeconds),
    ...(kafka.pids.length > 0 ? { kafkaCpuUs: perMessage(kafkaSeconds) } : {}),
    ...(rss > 0 ? { rssMb: Math.round(rss / 2 ** 20) } : {}),
  };
}

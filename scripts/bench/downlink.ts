/**
 * `npm run bench:downlink` — downlink latency (Kafka produce → device receive) at a steady rate,
 * and throughput of a burst, against a real Kafka.
 *
 * The bridge, the KafkaJS producer and the MQTT.js devices share this process and the machine's
 * cores: figures are a floor, meaningful as ratios within one run.
 *
 *   BENCH_DEVICES   subscribed devices (default 100)
 *   BENCH_RATE      records per second in the steady phase (default 1000)
 *   BENCH_SECONDS   length of the steady phase (default 10)
 *   BENCH_BURST     records of the burst phase (default 20000)
 */
import { randomBytes } from 'node:crypto';
import { CompressionTypes, type Producer } from 'kafkajs';
import mqtt, { type MqttClient } from 'mqtt';
import { percentile, runBenchmark, startBenchBridge } from './bench-bridge.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 100);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const BURST = Number(process.env.BENCH_BURST ?? 20_000);
/** Records per producer request in the steady phase (every 10 ms). */
const TICK_MS = 10;

/** Devices that record, per message, the time from the timestamp in its payload to arrival. */
async function connectDevices(
  port: number,
): Promise<{ devices: MqttClient[]; latencies: number[] }> {
  const latencies: number[] = [];
  const devices = await Promise.all(
    Array.from({ length: DEVICES }, async (_, index) => {
      const client = await mqtt.connectAsync({
        host: '127.0.0.1',
        port,
        clientId: `bench-device-${index}`,
        reconnectPeriod: 0,
      });
      client.on('message', (_topic, payload) => {
        latencies.push(performance.now() - Number(payload.toString()));
      });
      await client.subscribeAsync(`devices/d${index}/commands`, { qos: 1 });
      return client;
    }),
  );
  return { devices, latencies };
}

async function produce(producer: Producer, topic: string, count: number, first: number) {
  await producer.send({
    topic,
    compression: CompressionTypes.None,
    messages: Array.from({ length: count }, (_, index) => ({
      key: `d${(first + index) % DEVICES}`,
      value: performance.now().toFixed(3),
    })),
  });
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function main(): Promise<void> {
  const bench = await startBenchBridge(
    (topic) =>
      `downlink:\n  - name: commands\n    from: { topic: ${topic}, start: latest }\n    to: { topic: 'devices/{key}/commands', qos: 1 }\n`,
    { downlink: { startDelayMs: 0, groupId: `bench-${randomBytes(4).toString('hex')}` } },
  );
  const { bridge, topic } = bench;
  const producer = bench.kafka.producer();
  await producer.connect();
  const { devices, latencies } = await connectDevices(bridge.addresses.mqtt.port);
  try {
    // the consumer has joined once a record arrives; warm-up records then drain
    while (latencies.length === 0) {
      await produce(producer, topic, 1, 0);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    latencies.length = 0;

    const perTick = Math.max(1, Math.round((RATE * TICK_MS) / 1000));
    const ticks = Math.round((SECONDS * 1000) / TICK_MS);
    const steadyStart = performance.now();
    for (let tick = 0; tick < ticks; tick++) {
      await produce(producer, topic, perTick, tick * perTick);
      const due = steadyStart + (tick + 1) * TICK_MS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const steadyTotal = perTick * ticks;
    await waitUntil(() => latencies.length >= steadyTotal);
    const steady = [...latencies].sort((a, b) => a - b);

    latencies.length = 0;
    const burstStart = performance.now();
    for (let sent = 0; sent < BURST; sent += 1000) {
      await produce(producer, topic, Math.min(1000, BURST - sent), sent);
    }
    await waitUntil(() => latencies.length >= BURST);
    const burstSeconds = (performance.now() - burstStart) / 1000;

    console.log(
      `\ndownlink bench: ${DEVICES} devices (QoS 1), Kafka ${bench.brokers}, 6 partitions`,
    );
    console.table([
      {
        scenario: `steady ${RATE}/s for ${SECONDS} s`,
        messages: steady.length,
        p50Ms: Number(percentile(steady, 50).toFixed(2)),
        p99Ms: Number(percentile(steady, 99).toFixed(2)),
        maxMs: Number((steady.at(-1) ?? NaN).toFixed(2)),
      },
      {
        scenario: `burst of ${BURST}`,
        messages: BURST,
        perSecond: Math.round(BURST / burstSeconds),
        rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
      },
    ]);
  } finally {
    await Promise.all(devices.map((device) => device.endAsync()));
    await producer.disconnect();
    await bench.stop();
  }
}

runBenchmark(main);

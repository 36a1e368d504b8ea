/**
 * Fault injection on the Kafka side (issue 5), against a PRIVATE Kafka of this file (the shared
 * test Kafka is used by other files in parallel and must not be stopped): the broker process
 * stopped in the middle of a stream and started again; and a TCP proxy between bridge and Kafka
 * that holds all traffic while devices keep publishing. The bridge runs as a real process.
 */
import { setTimeout as delay } from 'node:timers/promises';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeProcess, stopAllBridgeProcesses } from '../support/bridge-process.js';
import { uniqueId } from '../support/kafka-helpers.js';
import { PrivateKafka } from '../support/private-kafka.js';
import {
  checkStreams,
  readAllRecords,
  reportLine,
  StreamDevice,
} from '../support/stream-devices.js';
import { PingWatcher } from '../support/ping-watcher.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

let kafka: PrivateKafka | undefined;
let proxy: TcpProxy | undefined;

beforeAll(async () => {
  // The proxy listens first: Kafka advertises its port for the PROXIED listener.
  proxy = await TcpProxy.start({ target: { host: '127.0.0.1', port: 1 } });
  kafka = await PrivateKafka.create({ proxyPort: proxy.port });
  proxy.retarget(kafka.proxiedTarget);
}, 150_000);

afterAll(async () => {
  await stopAllBridgeProcesses();
  await proxy?.close();
  await kafka?.destroy();
});

function privateKafka(): PrivateKafka {
  if (!kafka) throw new Error('private Kafka not started');
  return kafka;
}

async function createTopic(prefix: string, partitions: number): Promise<string> {
  const topic = `${prefix}-${uniqueId()}`;
  const admin = privateKafka().client().admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

/** Publishes to `{prefix}/{device}/data` become records of `topic` keyed by the device. */
function rules(prefix: string, topic: string): string {
  return `uplink:\n  - name: stream\n    from: ${prefix}/{device}/data\n    to: { topic: ${topic}, key: '{device}' }\n`;
}

const MiB = 1024 * 1024;
const mib = (bytes: number): string => (bytes / MiB).toFixed(1);

describe('faults: Kafka broker stopped and unreachable', () => {
  it('Kafka stopped mid-stream and restarted: every acknowledged publish is in Kafka, in order per key', async () => {
    const broker = privateKafka();
    const topic = await createTopic('outage', 3);
    const prefix = `outage-${uniqueId()}`;
    const bridge = await BridgeProcess.start({
      brokers: broker.brokers,
      mappings: rules(prefix, topic),
    });

    // Readiness, polled throughout: it must turn not-ready while Kafka is gone, and back.
    const readiness: Array<{ at: number; status: number }> = [];
    const polling = { on: true };
    const poller = (async () => {
      while (polling.on) {
        const status = await bridge.readiness();
        if (readiness.at(-1)?.status !== status) readiness.push({ at: Date.now(), status });
        await delay(200);
      }
    })();

    // Devices as they are in the field: persistent sessions, reconnecting and retransmitting
    // if the bridge ever closes them (which it should not: it holds the acknowledgements).
    const devices = await Promise.all(
      ([4, 4, 4, 5, 5] as const).map((protocolVersion, index) => {
        const clientId = `outage-${index}-${uniqueId()}`;
        return new StreamDevice({
          port: bridge.mqttPort,
          clientId,
          topic: `${prefix}/${clientId}/data`,
          protocolVersion,
          mqtt: { clean: false, reconnectPeriod: 500, keepalive: 30 },
        }).connected();
      }),
    );
    const started = Date.now();
    try {
      for (const device of devices) device.stream({ intervalMs: 40, window: 900 });
      await waitFor(() => devices.every((device) => device.acked.size >= 10), {
        timeoutMs: 20_000,
        what: 'the streams to flow',
      });

      const stopping = Date.now();
      await broker.stop();
      const stopped = Date.now();
      const ackedAtStop = devices.reduce((sum, device) => sum + device.acked.size, 0);
      const sentAtStop = devices.reduce((sum, device) => sum + device.sent, 0);
      await delay(3_000); // devices keep publishing with Kafka gone
      const ackedWhileDown =
        devices.reduce((sum, device) => sum + device.acked.size, 0) - ackedAtStop;
      const sentAtRestart = devices.reduce((sum, device) => sum + device.sent, 0);
      const restarting = Date.now();
      await broker.start();
      const restarted = Date.now();
      const ackedAtRestart = devices.reduce((sum, device) => sum + device.acked.size, 0);

      // Everything held is acknowledged once Kafka is back; a little more flows, then stop.
      await waitFor(
        () => devices.reduce((sum, device) => sum + device.acked.size, 0) > ackedAtRestart + 50,
        { timeoutMs: 60_000, intervalMs: 100, what: 'acknowledgements after the restart' },
      ).catch(() => undefined);
      for (const device of devices) device.stopStream();
      await Promise.allSettled(devices.map((device) => device.settled(60_000)));
      await waitFor(() => readiness.at(-1)?.status === 200, {
        timeoutMs: 15_000,
        what: 'readiness back at 200',
      }).catch(() => undefined);
      polling.on = false;
      await poller;

      const records = await readAllRecords([broker.brokers], topic);
      const report = checkStreams(devices, records);
      const closes = devices.reduce((sum, device) => sum + device.closes, 0);
      const reasonCodes = [
        ...new Set(devices.flatMap((device) => [...device.failed.values()])),
      ].join('/');
      const notReady = readiness.find((entry) => entry.status !== 200 && entry.at >= stopping);
      const readyAgain = readiness.find((entry) => entry.status === 200 && entry.at >= restarting);
      console.log(
        reportLine('kafka-stopped', report, {
          sentWhileDown: sentAtRestart - sentAtStop,
          heldAtRestart: sentAtRestart - ackedAtRestart,
          ackedWhileDown,
          closes,
          failures: reasonCodes || 'none',
          stopMs: stopped - stopping,
          downMs: restarted - stopped,
          notReadyAfterMs: notReady ? notReady.at - stopping : 'never',
          readyAgainAfterStartMs: readyAgain ? readyAgain.at - restarting : 'never',
          wallMs: Date.now() - started,
          bridgeLog: bridge.problems().join('; ') || 'clean',
        }),
      );
      expect(sentAtRestart - sentAtStop).toBeGreaterThan(50); // the outage really was under load
      expect({
        lostAcked: report.lostAcked,
        orderViolations: report.orderViolations,
        unexplainedDuplicates: report.unexplainedDuplicates,
        foreign: report.foreign,
        ackedWhileDown,
        // held, not refused nor dropped: every publish acknowledged once Kafka is back
        failed: report.failed,
        unanswered: report.unanswered,
        connectionsClosed: closes,
        notReadyWhileDown: notReady !== undefined,
        readyAgain: readyAgain !== undefined,
      }).toEqual({
        lostAcked: 0,
        orderViolations: 0,
        unexplainedDuplicates: 0,
        foreign: 0,
        ackedWhileDown: 0,
        failed: 0,
        unanswered: 0,
        connectionsClosed: 0,
        notReadyWhileDown: true,
        readyAgain: true,
      });
    } finally {
      polling.on = false;
      await Promise.all(devices.map((device) => device.end()));
      if (!broker.running) await broker.start();
    }
  }, 150_000);

  it('Kafka unreachable behind a paused proxy: devices are slowed, not dropped, and the bridge memory stays bounded', async () => {
    const broker = privateKafka();
    const tcpProxy = proxy;
    if (!tcpProxy) throw new Error('proxy not started');
    const topic = await createTopic('paused', 4);
    const prefix = `paused-${uniqueId()}`;
    const maxPendingBytes = 4 * MiB;
    const bridge = await BridgeProcess.start({
      brokers: `127.0.0.1:${tcpProxy.port}`,
      mappings: rules(prefix, topic),
      env: {
        BRIDGE_KAFKA_MAX_PENDING_BYTES: String(maxPendingBytes),
        BRIDGE_KAFKA_MAX_PENDING_RECORDS: '2000',
        // V8's young generation grows by up to 2 × 16 MiB under load whatever the bridge holds;
        // pinned small here, the RSS growth measures what the bridge keeps, not V8's sizing
        NODE_OPTIONS: '--max-semi-space-size=4',
      },
    });
    const payloadBytes = 16 * 1024;
    const warmup = 100;
    const perDevice = 1000; // below mqtt.receiveMaximum (1024): only the global budget bounds it
    const devices = await Promise.all(
      Array.from({ length: 8 }, (_, index) => {
        const clientId = `paused-${index}-${uniqueId()}`;
        return new StreamDevice({
          port: bridge.mqttPort,
          clientId,
          topic: `${prefix}/${clientId}/data`,
          payloadBytes,
          mqtt: { keepalive: 30 },
        }).connected();
      }),
    );
    // Another client, idle, with a 2 s keep alive, in its own process (immune to this busy
    // worker): its PINGs must be answered throughout and its connection kept.
    const watcher = await PingWatcher.start(bridge.mqttPort, `watcher-${uniqueId()}`, 2);
    try {
      // Warm up (JIT, buffers, Kafka connections through the proxy), then take the baseline.
      for (const device of devices) device.burst(warmup);
      await Promise.all(devices.map((device) => device.settled(30_000)));
      const baselineRss = bridge.rssBytes();
      const proxyBytesBefore = tcpProxy.bytesUp;

      tcpProxy.pause();
      const pausedAt = Date.now();

      // Each device sends its messages in small bursts, so this worker never blocks for long.
      const feeding = (async () => {
        for (let sent = 0; sent < perDevice; sent += 25) {
          for (const device of devices) device.burst(Math.min(25, perDevice - sent));
          await delay(5);
        }
      })();
      const ackedAt = (): number => devices.reduce((sum, device) => sum + device.acked.size, 0);
      let maxRss = baselineRss;
      let maxPending = 0;
      let maxPendingRecords = 0;
      let ackedAfter1s = -1;
      let lateClientMs = -1;
      while (Date.now() - pausedAt < 6_000) {
        maxRss = Math.max(maxRss, bridge.rssBytes());
        if (ackedAfter1s < 0 && Date.now() - pausedAt >= 1_000) ackedAfter1s = ackedAt();
        if (lateClientMs < 0 && Date.now() - pausedAt >= 2_000) {
          // a device connecting now is served (CONNACK) despite the congestion
          const connecting = Date.now();
          const late = await mqtt.connectAsync({
            host: '127.0.0.1',
            port: bridge.mqttPort,
            clientId: `late-${uniqueId()}`,
            reconnectPeriod: 0,
            connectTimeout: 3_000,
          });
          lateClientMs = Date.now() - connecting;
          await late.endAsync();
        }
        maxPending = Math.max(maxPending, await bridge.metric('bridge_kafka_pending_bytes'));
        maxPendingRecords = Math.max(
          maxPendingRecords,
          await bridge.metric('bridge_kafka_pending_records'),
        );
        await delay(100);
      }
      await feeding;
      const ackedAtResume = ackedAt();
      const pongsWhilePaused = watcher.pongsBetween(pausedAt, Date.now());
      const closesWhilePaused = devices.reduce((sum, device) => sum + device.closes, 0);
      const offeredBytes = devices.reduce(
        (sum, device) => sum + device.outstanding * payloadBytes,
        0,
      );
      tcpProxy.resume();
      const resumedAt = Date.now();
      await Promise.allSettled(devices.map((device) => device.settled(60_000)));
      const drainMs = Date.now() - resumedAt;

      const records = await readAllRecords([broker.brokers], topic);
      const report = checkStreams(devices, records);
      const growth = maxRss - baselineRss;
      const rssBound = maxPendingBytes + 32 * MiB;
      console.log(
        reportLine('kafka-paused-proxy', report, {
          offeredWhilePausedMiB: mib(offeredBytes),
          baselineRssMiB: mib(baselineRss),
          maxRssMiB: mib(maxRss),
          rssGrowthMiB: mib(growth),
          rssBoundMiB: mib(rssBound),
          maxPendingMiB: mib(maxPending),
          maxPendingRecords,
          ackedWhilePaused: ackedAtResume - ackedAfter1s,
          watcherPongsWhilePaused: pongsWhilePaused,
          watcherTroubles: watcher.troubles().join('/') || 'none',
          lateClientConnectMs: lateClientMs,
          closesWhilePaused,
          drainMs,
          proxiedMiB: mib(tcpProxy.bytesUp - proxyBytesBefore),
          bridgeLog: bridge.problems().join('; ') || 'clean',
        }),
      );
      expect(offeredBytes).toBeGreaterThan(3 * rssBound); // the test means something
      expect({
        rssWithinBound: growth <= rssBound,
        pendingWithinBudget: maxPending <= maxPendingBytes + MiB,
        ackedWhilePaused: ackedAtResume - ackedAfter1s,
        watcherPingsAnswered: pongsWhilePaused >= 2,
        connectionsClosed: closesWhilePaused,
        watcherTroubles: watcher.troubles(),
        lostAcked: report.lostAcked,
        orderViolations: report.orderViolations,
        duplicates: report.duplicates,
        foreign: report.foreign,
        failed: report.failed,
        unanswered: report.unanswered,
      }).toEqual({
        rssWithinBound: true,
        pendingWithinBudget: true,
        ackedWhilePaused: 0,
        watcherPingsAnswered: true,
        connectionsClosed: 0,
        watcherTroubles: [],
        lostAcked: 0,
        orderViolations: 0,
        duplicates: 0,
        foreign: 0,
        failed: 0,
        unanswered: 0,
      });
    } finally {
      tcpProxy.resume();
      watcher.stop();
      await Promise.all(devices.map((device) => device.end()));
    }
  }, 120_000);

  it('Kafka unreachable beyond kafka.ackTimeoutMs: MQTT 5 publishes refused with 0x97, 3.1.1 connections closed, nothing acknowledged', async () => {
    const broker = privateKafka();
    const tcpProxy = proxy;
    if (!tcpProxy) throw new Error('proxy not started');
    const topic = await createTopic('ack-timeout', 1);
    const prefix = `ack-timeout-${uniqueId()}`;
    const ackTimeoutMs = 2_000;
    const bridge = await BridgeProcess.start({
      brokers: `127.0.0.1:${tcpProxy.port}`,
      mappings: rules(prefix, topic),
      env: { BRIDGE_KAFKA_ACK_TIMEOUT_MS: String(ackTimeoutMs) },
    });
    const device = (protocolVersion: 4 | 5): Promise<StreamDevice> => {
      const clientId = `ack-timeout-v${protocolVersion}-${uniqueId()}`;
      return new StreamDevice({
        port: bridge.mqttPort,
        clientId,
        topic: `${prefix}/${clientId}/data`,
        protocolVersion,
      }).connected();
    };
    const v5 = await device(5);
    const v4 = await device(4);
    const perDevice = 20;
    try {
      v5.burst(5);
      v4.burst(5);
      await Promise.all([v5.settled(15_000), v4.settled(15_000)]);

      tcpProxy.pause();
      const pausedAt = Date.now();
      v5.burst(perDevice);
      v4.burst(perDevice);
      const limitMs = ackTimeoutMs + 10_000;
      await waitFor(() => v5.outstanding === 0 && v4.closes > 0, {
        timeoutMs: limitMs,
        intervalMs: 50,
        what: 'the MQTT 5 refusals and the 3.1.1 close',
      }).catch(() => undefined);
      const answered = [...v5.answeredAt.entries()].filter(([seq]) => seq >= 5);
      const lastAnswerMs =
        answered.length === 0 ? 'none' : Math.max(...answered.map(([, at]) => at - pausedAt));
      const v4ClosedMs = v4.firstCloseAt !== undefined ? v4.firstCloseAt - pausedAt : 'open';
      const atLimit = `v5 ${v5.summary()} v4 ${v4.summary()}`;
      const v5Codes = [...new Set(v5.failed.values())];
      const ackedWhileUnreachable = v5.acked.size + v4.acked.size - 10;
      tcpProxy.resume();

      // Kafka back: a new device's publishes flow again.
      const after = await device(5);
      after.burst(5);
      await after.settled(30_000);
      const records = await readAllRecords([broker.brokers], topic);
      const report = checkStreams([v5, v4, after], records);
      console.log(
        reportLine('ack-timeout', report, {
          ackTimeoutMs,
          atLimit,
          atEnd: `v5 ${v5.summary()} v4 ${v4.summary()} after ${after.summary()} (sent/acked/failed/outstanding)`,
          v5Refused: v5.failed.size,
          v5Codes: v5Codes.join('/') || 'none',
          v5Answered: `${answered.length}/${perDevice}`,
          v5LastAnswerMs: lastAnswerMs,
          waitedMs: limitMs,
          v4ClosedAfterMs: v4ClosedMs,
          ackedWhileUnreachable,
          refusedButInKafka: report.foundUnacked,
          bridgeLog: bridge.problems().join('; ') || 'clean',
        }),
      );
      expect({
        v5Refused: v5.failed.size,
        v5Codes,
        v5AnsweredInTime:
          answered.length === perDevice &&
          typeof lastAnswerMs === 'number' &&
          lastAnswerMs <= ackTimeoutMs + 3_000,
        v4ClosedInTime: typeof v4ClosedMs === 'number' && v4ClosedMs <= ackTimeoutMs + 3_000,
        ackedWhileUnreachable,
        lostAcked: report.lostAcked,
        flowsAgain: after.acked.size,
      }).toEqual({
        v5Refused: perDevice,
        v5Codes: ['Publish error: Quota exceeded [0x97]'],
        v5AnsweredInTime: true,
        v4ClosedInTime: true,
        ackedWhileUnreachable: 0,
        lostAcked: 0,
        flowsAgain: 5,
      });
    } finally {
      tcpProxy.resume();
      await Promise.all([v5.end(), v4.end()]);
    }
  }, 90_000);
});

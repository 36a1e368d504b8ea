import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  LoadAverage,
  SysTopics,
  type SysFigures,
  type SysSource,
} from '../../../src/mqtt/sys-topics.js';
import { Traffic } from '../../../src/mqtt/traffic.js';
import { isSysTopic } from '../../../src/rules/mqtt-topic-name.js';
import { BridgeMetrics } from '../../../src/observability/metrics.js';

/** A broker stand-in: its traffic and figures set by the test, what it is given to publish kept. */
function fakeBroker(): SysSource & {
  figures: SysFigures;
  published: Array<[string, string]>;
  /** The last payload published on `topic`. */
  last(topic: string): string | undefined;
} {
  const published: Array<[string, string]> = [];
  const broker = {
    traffic: new Traffic(),
    figures: { connected: 0, sessions: 0, subscriptions: 0, retained: 0, queued: 0 },
    published,
    sysFigures: () => ({ ...broker.figures }),
    publishSys: (topic: string, payload: Buffer) => {
      published.push([topic, payload.toString()]);
    },
    last: (topic: string) => published.findLast(([name]) => name === topic)?.[1],
  };
  return broker;
}

const LOAD_1MIN = '$SYS/broker/load/messages/received/1min';
const LOAD_5MIN = '$SYS/broker/load/messages/received/5min';
const LOAD_15MIN = '$SYS/broker/load/messages/received/15min';

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-12-03T12:00:00Z') });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('LoadAverage', () => {
  it("moves towards a counter's per-minute rate as Mosquitto's 1, 5 and 15 minute averages do", () => {
    const load = new LoadAverage();
    expect(load.update(1_000, 0)).toEqual([0, 0, 0]);
    // 600 a minute for one minute: rate × (1 − e^(−1)), (1 − e^(−1/5)), (1 − e^(−1/15))
    const afterMinute = load.update(1_600, 60_000).map((value) => value.toFixed(2));
    expect(afterMinute).toEqual(['379.27', '108.76', '38.70']);
    // nothing more: each decays by e^(−Δt/window)
    const decayed = load.update(1_600, 120_000).map((value) => value.toFixed(2));
    expect(decayed).toEqual(['139.53', '89.05', '36.20']);
  });

  it('gives the same averages whatever the update interval for a steady rate', () => {
    const coarse = new LoadAverage();
    const fine = new LoadAverage();
    coarse.update(0, 0);
    fine.update(0, 0);
    coarse.update(600, 60_000);
    for (let step = 1; step <= 6; step++) fine.update(step * 100, step * 10_000);
    expect(fine.averages.map((value) => value.toFixed(2))).toEqual(
      coarse.averages.map((value) => value.toFixed(2)),
    );
  });

  it('converges to a steady rate and ignores an update with no time passed', () => {
    const load = new LoadAverage();
    load.update(0, 0);
    for (let minute = 1; minute <= 120; minute++) load.update(minute * 30, minute * 60_000);
    expect(load.averages.map((value) => value.toFixed(1))).toEqual(['30.0', '30.0', '30.0']);
    const before = [...load.averages];
    expect(load.update(1_000_000, 120 * 60_000)).toEqual(before);
  });
});

describe('SysTopics', () => {
  it('publishes the version and every figure at start, with the loads at 0.00', async () => {
    const broker = fakeBroker();
    broker.figures = { connected: 2, sessions: 5, subscriptions: 7, retained: 3, queued: 4 };
    broker.traffic.bytesReceived = 1234;
    const sys = new SysTopics(broker, new BridgeMetrics(), {
      intervalSeconds: 10,
      version: '9.8.7',
    });
    sys.start();
    onTestFinished(() => {
      sys.stop();
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(broker.last('$SYS/broker/version')).toBe('mqtt-kafka-bridge version 9.8.7');
    expect(broker.last('$SYS/broker/uptime')).toBe('0 seconds');
    expect(broker.last('$SYS/broker/clients/connected')).toBe('2');
    expect(broker.last('$SYS/broker/clients/disconnected')).toBe('3');
    expect(broker.last('$SYS/broker/clients/total')).toBe('5');
    expect(broker.last('$SYS/broker/clients/maximum')).toBe('5');
    expect(broker.last('$SYS/broker/subscriptions/count')).toBe('7');
    expect(broker.last('$SYS/broker/retained messages/count')).toBe('3');
    expect(broker.last('$SYS/broker/store/messages/count')).toBe('7');
    expect(broker.last('$SYS/broker/bytes/received')).toBe('1234');
    expect(broker.last('$SYS/bridge/kafka/congested')).toBe('0');
    expect(broker.last(LOAD_1MIN)).toBe('0.00');
    expect(broker.last('$SYS/broker/load/connections/15min')).toBe('0.00');
    for (const [topic] of broker.published) expect(isSysTopic(topic), topic).toBe(true);
  });

  it('updates every interval: uptime, loads from the traffic, and only values that changed', async () => {
    const broker = fakeBroker();
    const sys = new SysTopics(broker, new BridgeMetrics(), { intervalSeconds: 10, version: '1' });
    sys.start();
    onTestFinished(() => {
      sys.stop();
    });
    await vi.advanceTimersByTimeAsync(0);
    // 100 packets every 10 s: 600 a minute
    for (let step = 0; step < 6; step++) {
      broker.traffic.packetsReceived += 100;
      await vi.advanceTimersByTimeAsync(10_000);
    }
    expect(broker.last('$SYS/broker/uptime')).toBe('60 seconds');
    expect(broker.last('$SYS/broker/messages/received')).toBe('600');
    expect([broker.last(LOAD_1MIN), broker.last(LOAD_5MIN), broker.last(LOAD_15MIN)]).toEqual([
      '379.27',
      '108.76',
      '38.70',
    ]);
    // figures that never changed went out once; the uptime every interval
    const count = (topic: string) => broker.published.filter(([name]) => name === topic).length;
    expect(count('$SYS/broker/version')).toBe(1);
    expect(count('$SYS/broker/clients/connected')).toBe(1);
    expect(count('$SYS/broker/load/bytes/sent/1min')).toBe(1);
    expect(count('$SYS/broker/uptime')).toBe(7);
    expect(count('$SYS/broker/messages/received')).toBe(7);
  });

  it('keeps the highest total of clients as the maximum', async () => {
    const broker = fakeBroker();
    const sys = new SysTopics(broker, new BridgeMetrics(), { intervalSeconds: 1, version: '1' });
    sys.start();
    onTestFinished(() => {
      sys.stop();
    });
    broker.figures = { ...broker.figures, connected: 4, sessions: 6 };
    await vi.advanceTimersByTimeAsync(1_000);
    broker.figures = { ...broker.figures, connected: 1, sessions: 2 };
    await vi.advanceTimersByTimeAsync(1_000);
    expect(broker.last('$SYS/broker/clients/total')).toBe('2');
    expect(broker.last('$SYS/broker/clients/maximum')).toBe('6');
  });

  it("reports the bridge's Kafka and downlink metrics, and the mean produce latency of the interval", async () => {
    const broker = fakeBroker();
    const metrics = new BridgeMetrics();
    metrics.pendingSource = () => ({ records: 17, bytes: 1_000 });
    const sys = new SysTopics(broker, metrics, { intervalSeconds: 10, version: '1' });
    sys.start();
    onTestFinished(() => {
      sys.stop();
    });
    await vi.advanceTimersByTimeAsync(0);
    metrics.kafkaRecordsProduced.inc(42);
    metrics.kafkaProduceFailures.inc(2);
    metrics.kafkaCongested.set(1);
    metrics.kafkaProduceSeconds.observe(0.01);
    metrics.kafkaProduceSeconds.observe(0.03);
    metrics.downlinkRecords.inc(5);
    metrics.downlinkUnsettled.set(3);
    metrics.mqttMessagesDropped.inc({ reason: 'queue-full' }, 4);
    metrics.mqttMessagesDropped.inc({ reason: 'expired' });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(broker.last('$SYS/bridge/kafka/records/produced')).toBe('42');
    expect(broker.last('$SYS/bridge/kafka/produce/failures')).toBe('2');
    expect(broker.last('$SYS/bridge/kafka/records/pending')).toBe('17');
    expect(broker.last('$SYS/bridge/kafka/congested')).toBe('1');
    expect(broker.last('$SYS/bridge/kafka/produce/latency')).toBe('20.00');
    expect(broker.last('$SYS/bridge/downlink/records/consumed')).toBe('5');
    expect(broker.last('$SYS/bridge/downlink/records/unsettled')).toBe('3');
    expect(broker.last('$SYS/broker/publish/messages/dropped')).toBe('5');
    // the next interval's requests alone make its mean
    metrics.kafkaProduceSeconds.observe(0.005);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(broker.last('$SYS/bridge/kafka/produce/latency')).toBe('5.00');
  });

  it('publishes nothing with an interval of 0, and nothing more once stopped', async () => {
    const off = fakeBroker();
    new SysTopics(off, new BridgeMetrics(), { intervalSeconds: 0, version: '1' }).start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(off.published).toEqual([]);

    const broker = fakeBroker();
    const sys = new SysTopics(broker, new BridgeMetrics(), { intervalSeconds: 1, version: '1' });
    sys.start();
    await vi.advanceTimersByTimeAsync(2_000);
    const sent = broker.published.length;
    expect(sent).toBeGreaterThan(0);
    sys.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(broker.published.length).toBe(sent);
  });

  it('does not keep the process alive (its timer is unref’d)', () => {
    const sys = new SysTopics(fakeBroker(), new BridgeMetrics(), {
      intervalSeconds: 10,
      version: '1',
    });
    const unref = vi.spyOn(globalThis, 'setInterval');
    sys.start();
    onTestFinished(() => {
      sys.stop();
    });
    const timer = unref.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
  });
});

describe('isSysTopic', () => {
  it('is true for $SYS and the topics below it only', () => {
    expect(isSysTopic('$SYS')).toBe(true);
    expect(isSysTopic('$SYS/broker/uptime')).toBe(true);
    expect(isSysTopic('$SYSTEM/x')).toBe(false);
    expect(isSysTopic('a/$SYS/x')).toBe(false);
    expect(isSysTopic('$sys/x')).toBe(false);
  });
});

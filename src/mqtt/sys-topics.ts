import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { BridgeMetrics } from '../observability/metrics.js';
import type { Traffic } from './traffic.js';

/** Counts of this bridge's own sessions and what they hold (see Broker.sysFigures). */
export interface SysFigures {
  /** Clients connected. */
  connected: number;
  /** Sessions, of connected clients and persistent ones without a connection. */
  sessions: number;
  /** Topic filters the sessions hold. */
  subscriptions: number;
  /** Retained messages (the `$SYS` ones included, as Mosquitto counts them). */
  retained: number;
  /** Messages waiting in the sessions' queues. */
  queued: number;
}

/** What the publisher reads and writes: the broker. */
export interface SysSource {
  readonly traffic: Traffic;
  sysFigures(): SysFigures;
  /** Retains the message and delivers it to this bridge's clients only (never to Kafka). */
  publishSys(topic: string, payload: Buffer): void;
}

export interface SysTopicsOptions {
  /** Seconds between updates (`sys.interval`); 0: nothing is published. */
  intervalSeconds: number;
  /** The bridge's version, for `$SYS/broker/version`. */
  version: string;
}

/** The longest delay a Node.js timer takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The windows of Mosquitto's load averages, in seconds, and the names of their topics. */
const WINDOWS = [
  [60, '1min'],
  [300, '5min'],
  [900, '15min'],
] as const;

/**
 * Mosquitto's `$SYS/broker/load/...`: the per-minute rate of a counter over each update's
 * interval, folded into averages that decay exponentially over 1, 5 and 15 minutes, as a Unix
 * load average does (`new = rate + e^(-Δt/window) × (old − rate)`, see Mosquitto's sys_tree.c).
 * All three start at 0.
 */
export class LoadAverage {
  readonly averages = [0, 0, 0];
  #count: number | undefined;
  #at = 0;

  /** The counter reads `count` at `now` (ms): the averages move towards its recent rate. */
  update(count: number, now: number): readonly number[] {
    const previous = this.#count;
    const seconds = (now - this.#at) / 1000;
    if (previous !== undefined && seconds <= 0) return this.averages;
    this.#count = count;
    this.#at = now;
    if (previous === undefined) return this.averages;
    const perMinute = ((count - previous) * 60) / seconds;
    WINDOWS.forEach(([window], index) => {
      const decay = Math.exp(-seconds / window);
      this.averages[index] = perMinute + decay * ((this.averages[index] ?? 0) - perMinute);
    });
    return this.averages;
  }
}

/** The counters whose loads are published, by the middle of their topic. */
const LOADS = [
  'messages/received',
  'messages/sent',
  'publish/received',
  'publish/sent',
  'publish/dropped',
  'bytes/received',
  'bytes/sent',
  'connections',
  'sockets',
] as const;
type LoadName = (typeof LOADS)[number];

type Readable = { get(): Promise<MetricObjectWithValues<MetricValue<string>>> };

/** The sum of a metric's values (over its labels); for a histogram, of `suffix`'s. */
async function valueOf(metric: Readable, suffix = ''): Promise<number> {
  const { name, values } = await metric.get();
  let sum = 0;
  for (const value of values) {
    const metricName = (value as { metricName?: string }).metricName ?? name;
    if (metricName === `${name}${suffix}`) sum += value.value;
  }
  return sum;
}

/**
 * The `$SYS/` tree Mosquitto users' tools read (`$SYS/broker/...`, see mosquitto(8)) and the
 * bridge's own figures (`$SYS/bridge/...`): published by the broker as retained messages every
 * `sys.interval` seconds, each only when its value changed (as Mosquitto does), so that a quiet
 * bridge sends little and a new subscriber still gets every current value.
 */
export class SysTopics {
  readonly #source: SysSource;
  readonly #metrics: BridgeMetrics;
  readonly #options: SysTopicsOptions;
  /** The payload last published on each topic: unchanged values are not sent again. */
  readonly #published = new Map<string, string>();
  readonly #loads = new Map<LoadName, LoadAverage>(LOADS.map((name) => [name, new LoadAverage()]));
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #maxClients = 0;
  /** Produce requests and their seconds at the last update, for the latency of the interval. */
  #produced = { count: 0, seconds: 0 };
  /** An update is under way (it reads metrics asynchronously): one at a time. */
  #updating = false;
  /** Set by stop(): an update that was reading metrics publishes nothing more. */
  #stopped = false;

  constructor(source: SysSource, metrics: BridgeMetrics, options: SysTopicsOptions) {
    this.#source = source;
    this.#metrics = metrics;
    this.#options = options;
  }

  /** Publishes the version and the first figures, then updates every interval (0: never). */
  start(): void {
    if (this.#options.intervalSeconds === 0 || this.#timer !== undefined) return;
    this.#stopped = false;
    this.#startedAt = Date.now();
    this.#publish('$SYS/broker/version', `mqtt-kafka-bridge version ${this.#options.version}`);
    void this.update();
    // unref'd: statistics never keep the process alive. Node takes a delay beyond 2^31 − 1 ms
    // (about 24 days) as 1 ms: a huge sys.interval is capped rather than spinning.
    const delayMs = Math.min(this.#options.intervalSeconds * 1000, MAX_TIMER_MS);
    this.#timer = setInterval(() => {
      void this.update();
    }, delayMs).unref();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One round: reads every figure and publishes those that changed. */
  async update(): Promise<void> {
    if (this.#updating || this.#stopped) return;
    this.#updating = true;
    try {
      const values = await this.#read();
      for (const [topic, payload] of values) this.#publish(topic, payload);
    } finally {
      this.#updating = false;
    }
  }

  /** Every topic and its payload now. */
  async #read(): Promise<Array<[string, string]>> {
    const now = Date.now();
    const metrics = this.#metrics;
    const traffic = this.#source.traffic;
    const figures = this.#source.sysFigures();
    const [dropped, produced, failures, congested, consumed, unsettled, count, seconds] =
      await Promise.all([
        valueOf(metrics.mqttMessagesDropped),
        valueOf(metrics.kafkaRecordsProduced),
        valueOf(metrics.kafkaProduceFailures),
        valueOf(metrics.kafkaCongested),
        valueOf(metrics.downlinkRecords),
        valueOf(metrics.downlinkUnsettled),
        valueOf(metrics.kafkaProduceSeconds, '_count'),
        valueOf(metrics.kafkaProduceSeconds, '_sum'),
      ]);
    this.#maxClients = Math.max(this.#maxClients, figures.sessions);
    const uptime = Math.floor((now - this.#startedAt) / 1000);
    const values: Array<[string, string]> = [
      ['$SYS/broker/uptime', `${uptime} seconds`],
      ['$SYS/broker/clients/connected', String(figures.connected)],
      [
        '$SYS/broker/clients/disconnected',
        String(Math.max(0, figures.sessions - figures.connected)),
      ],
      ['$SYS/broker/clients/total', String(figures.sessions)],
      ['$SYS/broker/clients/maximum', String(this.#maxClients)],
      ['$SYS/broker/messages/received', String(traffic.packetsReceived)],
      ['$SYS/broker/messages/sent', String(traffic.packetsSent)],
      ['$SYS/broker/publish/messages/received', String(traffic.publishesReceived)],
      ['$SYS/broker/publish/messages/sent', String(traffic.publishesSent)],
      ['$SYS/broker/publish/messages/dropped', String(dropped)],
      ['$SYS/broker/bytes/received', String(traffic.bytesReceived)],
      ['$SYS/broker/bytes/sent', String(traffic.bytesSent)],
      ['$SYS/broker/subscriptions/count', String(figures.subscriptions)],
      ['$SYS/broker/retained messages/count', String(figures.retained)],
      ['$SYS/broker/store/messages/count', String(figures.retained + figures.queued)],
      ['$SYS/bridge/kafka/records/produced', String(produced)],
      ['$SYS/bridge/kafka/produce/failures', String(failures)],
      ['$SYS/bridge/kafka/records/pending', String(metrics.pendingSource?.().records ?? 0)],
      ['$SYS/bridge/kafka/congested', congested > 0 ? '1' : '0'],
      ['$SYS/bridge/downlink/records/consumed', String(consumed)],
      ['$SYS/bridge/downlink/records/unsettled', String(unsettled)],
    ];
    // the mean of the produce requests acknowledged since the last update; none: unchanged
    if (count > this.#produced.count) {
      const latencyMs =
        ((seconds - this.#produced.seconds) / (count - this.#produced.count)) * 1000;
      values.push(['$SYS/bridge/kafka/produce/latency', latencyMs.toFixed(2)]);
    }
    this.#produced = { count, seconds };
    const counters: Record<LoadName, number> = {
      'messages/received': traffic.packetsReceived,
      'messages/sent': traffic.packetsSent,
      'publish/received': traffic.publishesReceived,
      'publish/sent': traffic.publishesSent,
      'publish/dropped': dropped,
      'bytes/received': traffic.bytesReceived,
      'bytes/sent': traffic.bytesSent,
      connections: traffic.connectsReceived,
      sockets: traffic.socketsAccepted,
    };
    for (const [name, load] of this.#loads) {
      const averages = load.update(counters[name], now);
      WINDOWS.forEach(([, label], index) => {
        values.push([`$SYS/broker/load/${name}/${label}`, (averages[index] ?? 0).toFixed(2)]);
      });
    }
    return values;
  }

  #publish(topic: string, payload: string): void {
    // stopped while an update read the metrics: the broker is closing, nothing more goes out
    if (this.#stopped || this.#published.get(topic) === payload) return;
    this.#published.set(topic, payload);
    this.#source.publishSys(topic, Buffer.from(payload));
  }
}

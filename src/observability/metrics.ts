import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RecentDeadLetters } from './recent-dead-letters.js';
import { RuleCounts } from './rule-counts.js';

/** What the broker holds and what crossed its sockets since start, read at scrape. */
export interface BrokerSource {
  /** Walks the sessions (once per gauge and scrape, never per message). */
  sessions(): { connected: number; sessions: number; subscriptions: number };
  /** Totals the connections bump as bytes and packets pass (mqtt/traffic.ts): no walk. */
  readonly traffic: {
    bytesReceived: number;
    bytesSent: number;
    publishesSent: number;
    publishesTakenByQos: readonly number[];
  };
}

/** What became of an uplink rule's records. */
export type UplinkRuleOutcome = 'produced' | 'dead_lettered' | 'refused';
/** What became of a downlink rule's messages. */
export type DownlinkRuleOutcome = 'delivered' | 'without_session' | 'dead_lettered' | 'refused';

/** The bridge's Prometheus metrics, one registry per bridge instance. */
export class BridgeMetrics {
  readonly registry = new Registry();

  readonly mqttConnections = new Gauge({
    name: 'bridge_mqtt_connections',
    help: 'MQTT connections currently open (CONNECT accepted).',
    registers: [this.registry],
  });

  readonly mqttConnectionsTotal = new Counter({
    name: 'bridge_mqtt_connections_total',
    help: 'MQTT connections accepted since start.',
    registers: [this.registry],
  });

  readonly mqttProtocolErrors = new Counter({
    name: 'bridge_mqtt_protocol_errors_total',
    help: 'Connections closed because of malformed or illegal input, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /**
   * Read from the broker's totals at scrape, as the other traffic counters: prom-client hashes
   * the labels of every increment (a bound child's too), garbage per publish.
   */
  readonly mqttPublishesReceived: Counter<'qos'> = new Counter({
    name: 'bridge_mqtt_publishes_received_total',
    help: 'PUBLISH packets received from clients, by QoS.',
    labelNames: ['qos'] as const,
    registers: [this.registry],
    collect: () => {
      const counts = this.brokerSource?.traffic.publishesTakenByQos;
      if (counts === undefined) return;
      this.mqttPublishesReceived.reset();
      counts.forEach((count, qos) => {
        if (count > 0) this.mqttPublishesReceived.inc({ qos: String(qos) }, count);
      });
    },
  });

  readonly mqttPublishesUnmapped = new Counter({
    name: 'bridge_mqtt_publishes_unmapped_total',
    help: 'PUBLISH packets that matched no uplink rule (unmatched policy: dropped, rejected or forwarded).',
    registers: [this.registry],
  });

  readonly uplinkDeadLettered = new Counter({
    name: 'bridge_uplink_dead_lettered_total',
    help: 'Publishes Kafka refused for good (topic missing, not authorized, too large) sent to the dead-letter topic instead.',
    registers: [this.registry],
  });

  readonly uplinkInvalidPayloads = new Counter({
    name: 'bridge_uplink_invalid_payloads_total',
    help: 'PUBLISH packets a matching rule could not encode (MQTT 5: 0x99); dead-lettered when the mappings set deadLetter.',
    registers: [this.registry],
  });

  readonly mappingsReloads = new Counter({
    name: 'bridge_mappings_reloads_total',
    help: 'Reloads of the mapping files (file change or SIGHUP), by result: success, or failure (invalid; the previous rules kept running).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly mappingsRules = new Gauge({
    name: 'bridge_mappings_rules',
    help: 'Uplink rules in use.',
    registers: [this.registry],
  });

  readonly mqttMessagesDropped = new Counter({
    name: 'bridge_mqtt_messages_dropped_total',
    help: 'Messages not delivered: to subscribers (expired, queue-full, offline-qos0, too-large, slow-subscriber), or QoS 0 publishes refused while the uplink is congested (uplink-congested).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly mqttDelayedMessages = new Gauge({
    name: 'bridge_mqtt_delayed_messages',
    help: 'Messages published to $delay/{seconds}/{topic} waiting for their time.',
    registers: [this.registry],
  });

  readonly mqttDelayedRefused = new Counter({
    name: 'bridge_mqtt_delayed_refused_total',
    help: 'Publishes to $delay/{seconds}/{topic} refused because mqtt.maxDelayedMessages (or mqtt.maxDelayedPerClient of that client) were waiting already.',
    registers: [this.registry],
  });

  readonly mqttPublishesDenied = new Counter({
    name: 'bridge_mqtt_publishes_denied_total',
    help: 'Publishes dropped because the ACL does not allow the client to publish to the topic.',
    registers: [this.registry],
  });

  readonly mqttSubscriptionsDenied = new Counter({
    name: 'bridge_mqtt_subscriptions_denied_total',
    help: 'Topic filters refused because the ACL does not allow the client to subscribe to them.',
    registers: [this.registry],
  });

  readonly unhandledErrors = new Counter({
    name: 'bridge_unhandled_errors_total',
    help: 'Errors of bugs, by kind: callback (a Kafka record settle callback threw; that publish only is affected), rejection (an unhandled promise rejection; the process goes on), exception (an uncaught exception; the bridge stops).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly mqttLimitRefusals = new Counter({
    name: 'bridge_mqtt_limit_refusals_total',
    help: 'What clients asked for and a limit refused, by the option that set it (label limit, e.g. mqtt.maxConnections): connections, subscriptions, topics, delayed and retained messages, publish rate.',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  readonly mqttRetainedRefused = new Counter({
    name: 'bridge_mqtt_retained_refused_total',
    help: 'Retained messages not kept: beyond retained.maxMessages or retained.maxBytes (a publish is refused, MQTT 5: 0x97).',
    registers: [this.registry],
  });

  readonly uplinkErrors = new Counter({
    name: 'bridge_uplink_errors_total',
    help: 'Publishes failed by an error inside the bridge (a bug): each fails that publish only (MQTT 5: 0x83).',
    registers: [this.registry],
  });

  readonly mqttAuthenticationFailures = new Counter({
    name: 'bridge_mqtt_authentication_failures_total',
    help: 'CONNECTs and re-authentications refused for bad credentials or missing authorization.',
    registers: [this.registry],
  });

  readonly mqttRetainedMessages = new Gauge({
    name: 'bridge_mqtt_retained_messages',
    help: 'Retained messages held by the broker.',
    registers: [this.registry],
  });

  readonly downlinkRecords = new Counter({
    name: 'bridge_downlink_records_total',
    help: 'Kafka records consumed by the downlink.',
    registers: [this.registry],
  });

  readonly downlinkRecordsSkipped = new Counter({
    name: 'bridge_downlink_records_skipped_total',
    help: 'Downlink records consumed again after a rebalance and skipped: this bridge had handed them over already.',
    registers: [this.registry],
  });

  readonly downlinkRecordsUnmatched = new Counter({
    name: 'bridge_downlink_records_unmatched_total',
    help: 'Downlink records no rule maps (sent to the dead-letter topic when one is set).',
    registers: [this.registry],
  });

  readonly downlinkRecordsInvalid = new Counter({
    name: 'bridge_downlink_records_invalid_total',
    help: 'Downlink records a rule could not map: value not decodable, field missing, bad topic (sent to the dead-letter topic when one is set).',
    registers: [this.registry],
  });

  readonly downlinkMessagesDelivered = new Counter({
    name: 'bridge_downlink_messages_delivered_total',
    help: 'Downlink messages handed to sessions, one per session.',
    registers: [this.registry],
  });

  readonly downlinkMessagesWithoutSession = new Counter({
    name: 'bridge_downlink_messages_without_session_total',
    help: 'Downlink messages dropped because no session subscribes to their topic.',
    registers: [this.registry],
  });

  readonly downlinkQueueWaits = new Counter({
    name: 'bridge_downlink_queue_waits_total',
    help: 'Times downlink consumption waited for a connected subscriber whose session queue was full (downlink.slowSubscriberWaitMs).',
    registers: [this.registry],
  });

  readonly downlinkUnsettled = new Gauge({
    name: 'bridge_downlink_unsettled_records',
    help: 'Downlink records handed to sessions and not yet acknowledged or dropped (their offsets are not committed).',
    registers: [this.registry],
  });

  readonly downlinkAssignedPartitions = new Gauge({
    name: 'bridge_downlink_assigned_partitions',
    help: 'Kafka partitions this bridge consumes, per downlink consumer group (0: standing by while another bridge consumes the group).',
    labelNames: ['group'] as const,
    registers: [this.registry],
  });

  readonly kafkaRecordsProduced = new Counter({
    name: 'bridge_kafka_records_produced_total',
    help: 'Records acknowledged by Kafka.',
    registers: [this.registry],
  });

  readonly kafkaProduceFailures = new Counter({
    name: 'bridge_kafka_produce_failures_total',
    help: 'Produce requests that failed after the client retries.',
    registers: [this.registry],
  });

  readonly kafkaBatchRecords = new Histogram({
    name: 'bridge_kafka_batch_records',
    help: 'Records of one partition per produce request (a request carries the batches of several partitions).',
    buckets: [1, 10, 100, 1000, 10000],
    registers: [this.registry],
  });

  readonly kafkaProduceSeconds = new Histogram({
    name: 'bridge_kafka_produce_seconds',
    help: 'Time from sending a produce request to its acknowledgement (observed once per partition in it).',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });

  /**
   * What the two pending gauges read when scraped (the producer pipeline's counts): set once per
   * scrape rather than twice per record.
   */
  pendingSource: (() => { records: number; bytes: number }) | undefined;

  readonly kafkaPendingRecords: Gauge = new Gauge({
    name: 'bridge_kafka_pending_records',
    help: 'Records accepted from MQTT and not yet acknowledged by Kafka.',
    registers: [this.registry],
    collect: () => {
      if (this.pendingSource) this.kafkaPendingRecords.set(this.pendingSource().records);
    },
  });

  readonly kafkaPendingBytes: Gauge = new Gauge({
    name: 'bridge_kafka_pending_bytes',
    help: 'Bytes of record values accepted from MQTT and not yet acknowledged by Kafka.',
    registers: [this.registry],
    collect: () => {
      if (this.pendingSource) this.kafkaPendingBytes.set(this.pendingSource().bytes);
    },
  });

  readonly kafkaCongested = new Gauge({
    name: 'bridge_kafka_congested',
    help: '1 while records waiting for Kafka exceed kafka.maxPendingRecords or kafka.maxPendingBytes (publishing connections are held), else 0.',
    registers: [this.registry],
  });

  /**
   * Not a Prometheus metric: the last 100 dead letters (and refusals for the same reasons), with
   * the rule and the reason, for the admin API and the dashboard.
   */
  readonly deadLetters = new RecentDeadLetters(100);

  /** Counted on the message path; written to bridge_uplink_rule_records_total at scrape. */
  readonly uplinkRules = new RuleCounts<UplinkRuleOutcome>([
    'produced',
    'dead_lettered',
    'refused',
  ]);

  readonly uplinkRuleRecords: Counter<'rule' | 'outcome'> = new Counter({
    name: 'bridge_uplink_rule_records_total',
    help: 'Records of each uplink rule (label rule; the dead-letter and unmatched records under their own names), by outcome: produced (Kafka has it), dead_lettered (the publish went to the dead-letter topic because of this rule: payload invalid, partition out of range, Kafka refused), refused (the same without a dead-letter topic, or Kafka unreachable beyond kafka.ackTimeoutMs).',
    labelNames: ['rule', 'outcome'],
    registers: [this.registry],
    collect: () => {
      this.uplinkRules.writeTo(this.uplinkRuleRecords);
    },
  });

  /** Counted on the message path; written to bridge_downlink_rule_messages_total at scrape. */
  readonly downlinkRules = new RuleCounts<DownlinkRuleOutcome>([
    'delivered',
    'without_session',
    'dead_lettered',
    'refused',
  ]);

  readonly downlinkRuleMessages: Counter<'rule' | 'outcome'> = new Counter({
    name: 'bridge_downlink_rule_messages_total',
    help: 'Messages each downlink rule made of records (label rule), by outcome: delivered (handed to at least one session), without_session (no session subscribes to its topic), dead_lettered (the rule could not map the record, or a reply was not allowed, and it went to the dead-letter topic), refused (the same without a dead-letter topic).',
    labelNames: ['rule', 'outcome'],
    registers: [this.registry],
    collect: () => {
      this.downlinkRules.writeTo(this.downlinkRuleMessages);
    },
  });

  /** Where the session gauges and the traffic totals are read at scrape (the broker sets it). */
  brokerSource: BrokerSource | undefined;

  readonly mqttSessions: Gauge<'state'> = new Gauge({
    name: 'bridge_mqtt_sessions',
    help: 'Sessions this bridge owns, by state: online (a client is connected) or offline (a persistent session waiting for its client).',
    labelNames: ['state'],
    registers: [this.registry],
    collect: () => {
      const figures = this.brokerSource?.sessions();
      if (figures === undefined) return;
      this.mqttSessions.set({ state: 'online' }, figures.connected);
      this.mqttSessions.set({ state: 'offline' }, figures.sessions - figures.connected);
    },
  });

  readonly mqttSubscriptions: Gauge = new Gauge({
    name: 'bridge_mqtt_subscriptions',
    help: 'Topic filters the sessions of this bridge subscribe to (shared ones included).',
    registers: [this.registry],
    collect: () => {
      const figures = this.brokerSource?.sessions();
      if (figures !== undefined) this.mqttSubscriptions.set(figures.subscriptions);
    },
  });

  readonly mqttBytesReceived = this.#brokerTotal(
    'bridge_mqtt_received_bytes_total',
    'Bytes read from MQTT client sockets (TCP, TLS and WebSocket payloads).',
    (traffic) => traffic.bytesReceived,
  );

  readonly mqttBytesSent = this.#brokerTotal(
    'bridge_mqtt_sent_bytes_total',
    'Bytes written to MQTT client sockets.',
    (traffic) => traffic.bytesSent,
  );

  readonly mqttPublishesSent = this.#brokerTotal(
    'bridge_mqtt_publishes_sent_total',
    'PUBLISH packets written to clients: messages between MQTT clients, from Kafka (downlink), retained and $SYS ones.',
    (traffic) => traffic.publishesSent,
  );

  readonly mqttPubackSeconds = new Histogram({
    name: 'bridge_mqtt_puback_seconds',
    help: 'From a QoS 1/2 PUBLISH read to its PUBACK/PUBREC answered (Kafka has the records, or the publish was refused): what the device waits. Sampled, one publish in 8 (an observation costs more than the rest of the acknowledgement).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly downlinkConsumerLag = new Gauge({
    name: 'bridge_downlink_consumer_lag',
    help: "Records of a downlink partition behind its end when the bridge last fetched from it (KafkaJS's offset lag of the batch), by consumer group, topic and partition.",
    labelNames: ['group', 'topic', 'partition'],
    registers: [this.registry],
  });

  readonly kafkaProduceRetries = new Counter({
    name: 'bridge_kafka_produce_retries_total',
    help: 'Produce requests tried again because Kafka was unreachable.',
    registers: [this.registry],
  });

  /** A counter whose value is a total the broker keeps, read at scrape. */
  #brokerTotal(
    name: string,
    help: string,
    read: (traffic: BrokerSource['traffic']) => number,
  ): Counter {
    const counter: Counter = new Counter({
      name,
      help,
      registers: [this.registry],
      collect: () => {
        const traffic = this.brokerSource?.traffic;
        if (traffic === undefined) return;
        counter.reset();
        counter.inc(read(traffic));
      },
    });
    return counter;
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const result of ['success', 'failure']) this.mappingsReloads.labels({ result }).inc(0);
  }
}

import type { AddressInfo } from 'node:net';
import { Partitioners, type Producer } from 'kafkajs';
import type { BridgeConfig } from './config/load.js';
import { BridgeError } from './errors.js';
import { createKafka } from './kafka/client.js';
import { PartitionCounts } from './kafka/partition-counts.js';
import { ProducerPipeline } from './kafka/producer-pipeline.js';
import { KafkaUplink } from './kafka-uplink.js';
import { loadAuth } from './auth/authenticator.js';
import { Broker } from './mqtt/broker.js';
import { TcpListener } from './mqtt/listeners/tcp.js';
import { WebSocketListener } from './mqtt/listeners/websocket.js';
import { ReasonCode } from './mqtt/reason-codes.js';
import { HttpServer } from './observability/http-server.js';
import type { Logger } from './observability/logger.js';
import { BridgeMetrics } from './observability/metrics.js';
import { loadMappings } from './rules/load.js';

/** Topic aliases an MQTT 5 client may define (CONNACK Topic Alias Maximum). */
const TOPIC_ALIAS_MAXIMUM = 64;

export interface BridgeAddresses {
  mqtt: AddressInfo;
  /** Absent when `websocket.enabled` is false. */
  websocket?: AddressInfo;
  http: AddressInfo;
}

/**
 * Wiring and lifecycle: mappings, Kafka producer, broker, listeners and the
 * HTTP server, started in that order and stopped in reverse.
 */
export class Bridge {
  readonly addresses: BridgeAddresses;
  readonly metrics: BridgeMetrics;
  readonly #config: BridgeConfig;
  readonly #log: Logger;
  readonly #producer: Producer;
  readonly #pipeline: ProducerPipeline;
  readonly #uplink: KafkaUplink;
  readonly #broker: Broker;
  readonly #tcp: TcpListener;
  readonly #websocket: WebSocketListener | undefined;
  readonly #http: HttpServer;
  #stopping: Promise<void> | undefined;

  private constructor(parts: {
    config: BridgeConfig;
    log: Logger;
    metrics: BridgeMetrics;
    producer: Producer;
    pipeline: ProducerPipeline;
    uplink: KafkaUplink;
    broker: Broker;
    tcp: TcpListener;
    websocket: WebSocketListener | undefined;
    http: HttpServer;
    addresses: BridgeAddresses;
  }) {
    this.#config = parts.config;
    this.#log = parts.log;
    this.metrics = parts.metrics;
    this.#producer = parts.producer;
    this.#pipeline = parts.pipeline;
    this.#uplink = parts.uplink;
    this.#broker = parts.broker;
    this.#tcp = parts.tcp;
    this.#websocket = parts.websocket;
    this.#http = parts.http;
    this.addresses = parts.addresses;
  }

  static async start(config: BridgeConfig, log: Logger): Promise<Bridge> {
    const router = await loadMappings(config.mappings);
    const authenticator = await loadAuth(config.auth.file);
    if (authenticator.enabled) log.info({ file: config.auth.file }, 'users and ACLs loaded');
    log.info(
      { mappings: config.mappings, rules: router.ruleCount, kafkaTopics: router.kafkaTopics() },
      'mappings loaded',
    );

    const metrics = new BridgeMetrics();
    const kafka = createKafka(config.kafka, log);
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // murmur2 of the key, as Kafka's Java producer does, so other producers agree on partitions
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    let kafkaConnected = false;
    producer.on(producer.events.CONNECT, () => (kafkaConnected = true));
    producer.on(producer.events.DISCONNECT, () => (kafkaConnected = false));
    await connectProducer(producer, config);
    log.info({ brokers: config.kafka.brokers }, 'connected to Kafka');

    const pipeline = new ProducerPipeline(producer, config.kafka, log, metrics);
    const uplink = new KafkaUplink(router, pipeline, metrics, new PartitionCounts(kafka.admin()));
    try {
      await uplink.checkFixedPartitions();
    } catch (error) {
      await uplink.close();
      await producer.disconnect();
      throw error;
    }
    const broker = new Broker(
      uplink,
      {
        maxPacketSize: config.mqtt.maxPacketSize,
        maxQueuedMessages: config.mqtt.maxQueuedMessages,
        maxDelayedMessages: config.mqtt.maxDelayedMessages,
        maxKeepAlive: config.mqtt.maxKeepAlive,
        maxSessionExpiry: config.mqtt.maxSessionExpiry,
        responseTopicPrefix: config.mqtt.responseTopicPrefix,
        serverReference: config.mqtt.serverReference,
        redirect: config.mqtt.redirect,
        authenticator,
        connectTimeoutMs: config.mqtt.connectTimeoutMs,
        topicAliasMaximum: TOPIC_ALIAS_MAXIMUM,
        receiveMaximum: config.mqtt.receiveMaximum,
      },
      log.child({ component: 'mqtt' }),
      metrics,
    );
    const tcp = new TcpListener(broker);
    const websocket = config.websocket.enabled
      ? new WebSocketListener(broker, {
          path: config.websocket.path,
          maxPacketSize: config.mqtt.maxPacketSize,
        })
      : undefined;
    const http = new HttpServer(metrics, { ready: () => kafkaConnected });
    try {
      const httpAddress = await http.listen(config.http.host, config.http.port);
      const mqttAddress = await tcp.listen(config.mqtt.host, config.mqtt.port);
      const websocketAddress = await websocket?.listen(
        config.websocket.host,
        config.websocket.port,
      );
      log.info(
        { mqtt: mqttAddress, websocket: websocketAddress, http: httpAddress },
        'bridge listening',
      );
      return new Bridge({
        config,
        log,
        metrics,
        producer,
        pipeline,
        uplink,
        broker,
        tcp,
        websocket,
        http,
        addresses: {
          mqtt: mqttAddress,
          ...(websocketAddress && { websocket: websocketAddress }),
          http: httpAddress,
        },
      });
    } catch (error) {
      await http.close().catch(() => undefined);
      await tcp.close();
      await websocket?.close();
      await uplink.close();
      await producer.disconnect();
      throw new BridgeError('LISTEN_FAILED', `cannot listen: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /**
   * Graceful stop: accept no connections, read no more input, wait (up to
   * the grace period) until Kafka acknowledged what was accepted so those
   * acknowledgements reach the clients, then DISCONNECT 0x8B and close.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#log.info('stopping');
    const listenerClosed = Promise.all([this.#tcp.close(), this.#websocket?.close()]);
    this.#broker.stopReading();
    const drained = await Promise.race([
      this.#pipeline.idle().then(() => true),
      new Promise<false>((resolve) =>
        setTimeout(() => {
          resolve(false);
        }, this.#config.shutdownGraceMs).unref(),
      ),
    ]);
    if (!drained) this.#log.warn('grace period over with Kafka acknowledgements still pending');
    const reference = this.#config.mqtt.serverReference;
    if (reference === '') {
      this.#broker.disconnectAll('server shutting down', ReasonCode.ServerShuttingDown);
    } else {
      this.#broker.disconnectAll('server shutting down', ReasonCode.UseAnotherServer, reference);
    }
    this.#broker.clearTimers();
    await listenerClosed;
    await this.#uplink.close();
    await this.#producer.disconnect();
    await this.#http.close();
    this.#log.info('stopped');
  }
}

async function connectProducer(producer: Producer, config: BridgeConfig): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      producer.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer within ${config.kafka.connectTimeoutMs} ms`));
        }, config.kafka.connectTimeoutMs);
      }),
    ]);
  } catch (error) {
    await producer.disconnect().catch(() => undefined);
    throw new BridgeError(
      'KAFKA_UNAVAILABLE',
      `cannot reach Kafka at ${config.kafka.brokers.join(',')} (kafka.brokers, env BRIDGE_KAFKA_BROKERS): ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
  }
}

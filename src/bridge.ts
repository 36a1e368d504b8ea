// first: V8's heap settings, then KafkaJS internals replaced before KafkaJS loads them (see
// the modules)
import './v8-tuning.js';
import './kafka/kafkajs-patches.js';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Kafka, Producer } from 'kafkajs';
import type { BridgeConfig } from './config/load.js';
import { BridgeError } from './errors.js';
import { createKafka } from './kafka/client.js';
import { kafkaCompression } from './kafka/compression.js';
import { connectProducer, KafkaConnectionState } from './kafka/connection-state.js';
import { loadKafkaSecurity, type KafkaSecurity } from './kafka/security.js';
import { createMissingTopics } from './kafka/topic-creation.js';
import { PartitionCounts } from './kafka/partition-counts.js';
import { ProducerPipeline } from './kafka/producer-pipeline.js';
import { chosenPartitioner } from './kafka/partition-choice.js';
import { KafkaUplink } from './kafka-uplink.js';
import { DownlinkConsumer } from './downlink/downlink-consumer.js';
import { BrokerProbe } from './kafka/broker-probe.js';
import { MappingsReloader, type ReloadResult } from './mappings-reloader.js';
import { AdminApi } from './admin/admin-api.js';
import { loadAdminToken } from './admin/admin-token.js';
import { isLoopbackAddress } from './auth/anonymous-access.js';
import { AuthReloader, type AuthReloadResult } from './auth/auth-reloader.js';
import { AuthThrottle } from './auth/auth-throttle.js';
import { loadAuth } from './auth/authenticator.js';
import { KafkaRetainedLog } from './cluster/retained-log.js';
import { KafkaSessionStore } from './cluster/kafka-session-store.js';
import { Broker } from './mqtt/broker.js';
import { ListenerSet, type ListenerAddresses } from './mqtt/listeners/listener-set.js';
import { ReasonCode } from './mqtt/reason-codes.js';
import { SysTopics } from './mqtt/sys-topics.js';
import { HttpServer } from './observability/http-server.js';
import type { Logger } from './observability/logger.js';
import { BridgeMetrics } from './observability/metrics.js';
import { loadMappings } from './rules/load.js';
import { SchemaRegistry, prepareRegistry } from './schema-registry/prepare.js';

/** A record unacknowledged this long makes the bridge not ready. */
const STALLED_PRODUCE_MS = 10_000;

/** Topic aliases an MQTT 5 client may define (CONNACK Topic Alias Maximum). */
const TOPIC_ALIAS_MAXIMUM = 64;

/** The bridge's version, for $SYS/broker/version. */
const { version } = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as { version: string };

/** What the mapping files compile to. */
type Mappings = Awaited<ReturnType<typeof loadMappings>>;

export interface BridgeAddresses extends ListenerAddresses {
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
  readonly #pipeline: ProducerPipeline;
  readonly #uplink: KafkaUplink;
  readonly #reloader: MappingsReloader<Mappings>;
  readonly #downlink: DownlinkConsumer;
  readonly #probe: BrokerProbe;
  readonly #broker: Broker;
  readonly #retainedLog: KafkaRetainedLog | undefined;
  readonly #sessionStore: KafkaSessionStore | undefined;
  readonly #listeners: ListenerSet;
  readonly #http: HttpServer;
  readonly #registry: SchemaRegistry | undefined;
  readonly #authReloader: AuthReloader | undefined;
  readonly #sysTopics: SysTopics;
  #stopping: Promise<void> | undefined;

  private constructor(parts: {
    config: BridgeConfig;
    log: Logger;
    metrics: BridgeMetrics;
    pipeline: ProducerPipeline;
    uplink: KafkaUplink;
    reloader: MappingsReloader<Mappings>;
    downlink: DownlinkConsumer;
    probe: BrokerProbe;
    broker: Broker;
    retainedLog: KafkaRetainedLog | undefined;
    sessionStore: KafkaSessionStore | undefined;
    listeners: ListenerSet;
    http: HttpServer;
    registry: SchemaRegistry | undefined;
    authReloader: AuthReloader | undefined;
    sysTopics: SysTopics;
    addresses: BridgeAddresses;
  }) {
    this.#config = parts.config;
    this.#log = parts.log;
    this.metrics = parts.metrics;
    this.#pipeline = parts.pipeline;
    this.#uplink = parts.uplink;
    this.#reloader = parts.reloader;
    this.#downlink = parts.downlink;
    this.#probe = parts.probe;
    this.#broker = parts.broker;
    this.#retainedLog = parts.retainedLog;
    this.#sessionStore = parts.sessionStore;
    this.#listeners = parts.listeners;
    this.#http = parts.http;
    this.#registry = parts.registry;
    this.#authReloader = parts.authReloader;
    this.#sysTopics = parts.sysTopics;
    this.addresses = parts.addresses;
  }

  static async start(config: BridgeConfig, log: Logger): Promise<Bridge> {
    // first: a token file that cannot be read stops the start before anything connects
    const adminToken = await loadAdminToken(config.admin);
    const mappings = await loadMappings(config.mappings);
    const registry = SchemaRegistry.fromConfig(config.schemaRegistry);
    try {
      await prepareRegistry(mappings, registry);
      const bridge = await Bridge.#start(config, log, mappings, registry);
      bridge.#serveAdminApi(adminToken, mappings);
      return bridge;
    } catch (error) {
      registry?.close();
      throw error;
    }
  }

  static async #start(
    config: BridgeConfig,
    log: Logger,
    mappings: Mappings,
    registry: SchemaRegistry | undefined,
  ): Promise<Bridge> {
    const router = mappings.uplink;
    const authenticator = await loadAuth(config.auth.file);
    if (authenticator.enabled) log.info({ file: config.auth.file }, 'users and ACLs loaded');
    else if (config.auth.allowAnonymous) {
      log.warn(
        'no auth.file and auth.allowAnonymous is true: every client may connect, publish and subscribe',
      );
    } else {
      log.info(
        'no auth.file: only clients connecting from this machine (loopback) are accepted; set auth.file (BRIDGE_AUTH_FILE) for users, or auth.allowAnonymous (BRIDGE_AUTH_ALLOW_ANONYMOUS) to accept anyone',
      );
    }
    log.info(
      { mappings: config.mappings, rules: router.ruleCount, kafkaTopics: router.kafkaTopics() },
      'mappings loaded',
    );
    const security = await loadKafkaSecurity(config.kafka);
    if (config.kafka.sasl.mechanism === 'plain' && !security.ssl) {
      log.warn(
        'kafka.sasl.mechanism is plain and kafka.ssl.enabled is false: the Kafka password crosses the network in clear text',
      );
    }

    const metrics = new BridgeMetrics();
    metrics.mappingsRules.set(router.ruleCount + mappings.downlink.ruleCount);
    // Liveness at once; readiness once Kafka took the bridge and the listeners are up.
    let readiness: () => string | undefined = () => 'starting';
    const http = new HttpServer(metrics, { notReady: () => readiness() });
    let httpAddress: AddressInfo;
    try {
      httpAddress = await http.listen(config.http.host, config.http.port);
      log.info({ http: httpAddress }, 'health and metrics listening');
    } catch (error) {
      throw new BridgeError('LISTEN_FAILED', `cannot listen: ${(error as Error).message}`, {
        cause: error,
      });
    }
    try {
      const connection = new KafkaConnectionState();
      const kafka = createKafka(config.kafka, security, log, (broker) => {
        connection.refusedBy = broker;
      });
      const newProducer = (): Producer => {
        const created = kafka.producer({
          idempotent: true,
          maxInFlightRequests: 1,
          // below the pipeline's partition-count refresh (60 s): a partition a grown topic
          // gained is in the producer's metadata soon after the pipeline starts using it
          metadataMaxAge: 30_000,
          // a device's publish never creates a topic: a missing one takes the dead-letter path
          allowAutoTopicCreation: false,
          // the pipeline names every record's partition (murmur2 of the key, as Kafka's Java
          // producer does, so other producers agree on partitions)
          createPartitioner: chosenPartitioner,
        });
        connection.follow(created);
        return created;
      };
      const producer = newProducer();
      readiness = () => connection.problem ?? 'connecting to Kafka';
      await connectProducer(producer, config, connection, log);
      log.info({ brokers: config.kafka.brokers }, 'connected to Kafka');
      const bridge = await Bridge.#startConnected(
        {
          config,
          log,
          metrics,
          mappings,
          registry,
          authenticator,
          security,
          kafka,
          producer,
          newProducer,
          http,
        },
        httpAddress,
      );
      const probe = bridge.#probe;
      const pipeline = bridge.#pipeline;
      // Ready: Kafka answers (probed while idle), the last produce reached it, and records do
      // not wait for long (a Kafka that accepts connections but does not answer).
      readiness = () => {
        // a load balancer takes a stopping bridge out of its pool before its listeners close
        if (bridge.#stopping) return 'stopping';
        if (!connection.connected) return connection.problem ?? 'Kafka producer disconnected';
        if (!probe.reachable) return 'Kafka brokers do not answer';
        if (!pipeline.kafkaReachable) return 'the last produce did not reach Kafka';
        if (pipeline.oldestPendingMs >= STALLED_PRODUCE_MS) return 'records wait for Kafka';
        return undefined;
      };
      return bridge;
    } catch (error) {
      await http.close().catch(() => undefined);
      throw error;
    }
  }

  /** The rest of start, once the producer is connected; `http` serves already. */
  static async #startConnected(
    parts: {
      config: BridgeConfig;
      log: Logger;
      metrics: BridgeMetrics;
      mappings: Mappings;
      registry: SchemaRegistry | undefined;
      authenticator: Awaited<ReturnType<typeof loadAuth>>;
      security: KafkaSecurity;
      kafka: Kafka;
      producer: Producer;
      newProducer: () => Producer;
      http: HttpServer;
    },
    httpAddress: AddressInfo,
  ): Promise<Bridge> {
    const { config, log, metrics, mappings, registry, authenticator, kafka, producer } = parts;
    const { newProducer, http } = parts;
    const router = mappings.uplink;
    const partitionCounts = new PartitionCounts(kafka.admin());
    const pipeline = new ProducerPipeline(
      producer,
      newProducer,
      partitionCounts,
      { ...config.kafka, compression: kafkaCompression(config.kafka.compression) },
      log,
      metrics,
    );
    const uplink = new KafkaUplink(router, pipeline, metrics, partitionCounts);
    try {
      if (config.kafka.createTopics) await createTopicsOf(mappings, kafka, config, log);
      await uplink.checkFixedPartitions();
    } catch (error) {
      pipeline.close();
      await uplink.close();
      await pipeline.disconnect();
      throw error;
    }
    let sessionStore: KafkaSessionStore | undefined;
    if (config.sessions.store === 'kafka') {
      try {
        sessionStore = await openSessionStore(kafka, pipeline, config, log);
      } catch (error) {
        pipeline.close();
        await uplink.close();
        await pipeline.disconnect();
        throw new BridgeError(
          'KAFKA_UNAVAILABLE',
          `sessions.store (env BRIDGE_SESSIONS_STORE) kafka cannot be used: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    const broker = new Broker(
      uplink,
      {
        maxPacketSize: config.mqtt.maxPacketSize,
        maxQueuedMessages: config.mqtt.maxQueuedMessages,
        slowSubscriberWaitMs: config.downlink.slowSubscriberWaitMs,
        maxDelayedMessages: config.mqtt.maxDelayedMessages,
        maxDelayedPerClient: config.mqtt.maxDelayedPerClient,
        maxSubscriptionsPerClient: config.mqtt.maxSubscriptionsPerClient,
        maxTopicLevels: config.mqtt.maxTopicLevels,
        maxTopicLength: config.mqtt.maxTopicLength,
        maxPublishRate: config.mqtt.maxPublishRate,
        maxKeepAlive: config.mqtt.maxKeepAlive,
        maxSessionExpiry: config.mqtt.maxSessionExpiry,
        responseTopicPrefix: config.mqtt.responseTopicPrefix,
        serverReference: config.mqtt.serverReference,
        redirect: config.mqtt.redirect,
        authenticator,
        anonymousAccess: config.auth.allowAnonymous ? 'anywhere' : 'loopback',
        authThrottle: new AuthThrottle({ maxDelayMs: config.auth.failureDelayMaxMs }),
        connectTimeoutMs: config.mqtt.connectTimeoutMs,
        connectionLimits: {
          maxConnections: config.mqtt.maxConnections,
          maxConnectionsPerAddress: config.mqtt.maxConnectionsPerAddress,
          maxConnectRate: config.mqtt.maxConnectRate,
        },
        topicAliasMaximum: TOPIC_ALIAS_MAXIMUM,
        receiveMaximum: config.mqtt.receiveMaximum,
        maxInflight: config.mqtt.maxInflight,
        maxWriteBuffer: config.mqtt.maxWriteBuffer,
        ...(sessionStore && { store: sessionStore }),
        retainedLimits: {
          maxMessages: config.retained.maxMessages,
          maxBytes: config.retained.maxBytes,
        },
        ...(config.retained.topic !== '' && {
          persistRetained: (message, done) => {
            if (retainedLog) retainedLog.write(message, done);
            else done();
          },
        }),
      },
      log.child({ component: 'mqtt' }),
      metrics,
    );
    if (sessionStore) {
      const owned = sessionStore.ownedSessions();
      for (const [clientId, state] of owned) broker.restoreSession(clientId, state);
      sessionStore.listen(broker);
      log.info({ sessions: owned.length }, 'sessions of this bridge restored from Kafka');
    }
    // the users and ACL file, reloaded when it changes and on SIGHUP (reloadAuth)
    const authReloader =
      config.auth.file === ''
        ? undefined
        : new AuthReloader({ path: config.auth.file, watch: true, authenticator, log });
    let retainedLog: KafkaRetainedLog | undefined;
    if (config.retained.topic !== '') {
      try {
        retainedLog = await KafkaRetainedLog.open(
          kafka,
          pipeline,
          {
            topic: config.retained.topic,
            clientId: config.kafka.clientId,
            timeoutMs: config.kafka.connectTimeoutMs,
          },
          broker,
          log.child({ component: 'retained' }),
        );
      } catch (error) {
        broker.clearTimers();
        await authReloader?.close();
        await sessionStore?.close();
        pipeline.close();
        await uplink.close();
        await pipeline.disconnect();
        throw new BridgeError(
          'KAFKA_UNAVAILABLE',
          `retained.topic (env BRIDGE_RETAINED_TOPIC) "${config.retained.topic}" cannot be used: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    const probe = new BrokerProbe(config.kafka.brokers, { ssl: parts.security.ssl });
    try {
      const listeners = new ListenerSet(broker, config);
      const mqttAddresses = await listeners.listen();
      log.info({ ...mqttAddresses, http: httpAddress }, 'bridge listening');
      const downlink = new DownlinkConsumer(
        kafka,
        mappings.downlink,
        broker,
        (record, done) => {
          pipeline.enqueue([record], () => {
            done();
          });
        },
        config.downlink,
        log.child({ component: 'downlink' }),
        metrics,
      );
      downlink.startAfter(config.downlink.startDelayMs);
      const reloader = watchMappings(config, kafka, uplink, downlink, log, metrics, registry);
      // $SYS/ statistics once clients can connect (sys.interval 0: none)
      const sysTopics = new SysTopics(broker, metrics, {
        intervalSeconds: config.sys.interval,
        version,
      });
      sysTopics.start();
      return new Bridge({
        config,
        log,
        metrics,
        pipeline,
        uplink,
        reloader,
        downlink,
        probe,
        broker,
        retainedLog,
        sessionStore,
        listeners,
        http,
        registry,
        authReloader,
        sysTopics,
        addresses: { ...mqttAddresses, http: httpAddress },
      });
    } catch (error) {
      probe.close();
      broker.clearTimers();
      await authReloader?.close();
      await retainedLog?.close();
      await sessionStore?.close();
      pipeline.close();
      await uplink.close();
      await pipeline.disconnect();
      if (error instanceof BridgeError) throw error;
      throw new BridgeError('LISTEN_FAILED', `cannot listen: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /**
   * Reloads the users and ACL file now, as SIGHUP does: all or nothing; clients of removed users
   * are disconnected, the others' rights change at once.
   */
  reloadAuth(): Promise<AuthReloadResult> {
    return (
      this.#authReloader?.reload() ??
      Promise.resolve({
        ok: false,
        issues: [{ file: '', line: 0, column: 0, message: 'no auth.file to reload' }],
      })
    );
  }

  /** Reloads the mapping rules now, as SIGHUP does: all or nothing, connections kept. */
  reloadMappings(): Promise<ReloadResult> {
    return this.#reloader.reload();
  }

  /**
   * The admin API on the HTTP server (/api/); without a token it answers 404 saying how to turn
   * it on. `mappings`: those in use now, followed through reloads for the rules and dry runs.
   */
  #serveAdminApi(token: string | undefined, mappings: Mappings): void {
    let current = mappings;
    this.#reloader.onReloaded((reloaded) => {
      current = reloaded;
    });
    const api = new AdminApi({
      token,
      broker: this.#broker,
      metrics: this.metrics,
      config: this.#config,
      mappings: () => current,
      reloader: this.#reloader,
      log: this.#log.child({ component: 'admin' }),
    });
    this.#http.serveApi(api.handle);
    if (token === undefined) return;
    this.#log.info('admin API on /api/ of the HTTP server');
    const { host } = this.#config.http;
    if (host !== 'localhost' && !isLoopbackAddress(host)) {
      this.#log.warn(
        { host },
        'the admin API listens beyond this machine over plain HTTP: its token crosses the network in clear text unless a TLS proxy is in front',
      );
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
    this.#sysTopics.stop();
    const listenerClosed = this.#listeners.close();
    this.#broker.stopReading();
    // Before sessions end (which drops what they hold): what is not settled stays uncommitted.
    await this.#downlink.stop();
    const drained = await Promise.race([
      this.#pipeline.idle().then(() => true),
      new Promise<false>((resolve) =>
        setTimeout(() => {
          resolve(false);
        }, this.#config.shutdownGraceMs).unref(),
      ),
    ]);
    if (!drained) this.#log.warn('grace period over with Kafka acknowledgements still pending');
    // with sessions kept in Kafka, clients have a while to come back before wills go out
    if (this.#sessionStore)
      this.#broker.keepSessionsForRestart(this.#config.sessions.restartGraceMs);
    const reference = this.#config.mqtt.serverReference;
    if (reference === '') {
      this.#broker.disconnectAll('server shutting down', ReasonCode.ServerShuttingDown);
    } else {
      this.#broker.disconnectAll('server shutting down', ReasonCode.UseAnotherServer, reference);
    }
    // the connections' ends are handled (sessions offline, wills kept) before timers stop
    await listenerClosed;
    this.#broker.clearTimers();
    await this.#sessionStore?.close();
    await this.#reloader.close();
    await this.#authReloader?.close();
    await this.#retainedLog?.close();
    this.#pipeline.close();
    this.#probe.close();
    await this.#uplink.close();
    await this.#pipeline.disconnect();
    await this.#http.close();
    this.#registry?.close();
    this.#log.info('stopped');
  }
}

/**
 * Hot reload of the mappings (file changes when `mappingsWatch`, and `reloadMappings()`): a new
 * version is checked like at start (fixed partitions against Kafka), then swapped into the uplink.
 */
function watchMappings(
  config: BridgeConfig,
  kafka: Kafka,
  uplink: KafkaUplink,
  downlink: DownlinkConsumer,
  log: Logger,
  metrics: BridgeMetrics,
  registry: SchemaRegistry | undefined,
): MappingsReloader<Mappings> {
  const reloader = new MappingsReloader<Mappings>({
    path: config.mappings,
    watch: config.mappingsWatch,
    load: loadMappings,
    check: async (mappings) => {
      await prepareRegistry(mappings, registry);
      downlink.checkReplacement(mappings.downlink);
      if (config.kafka.createTopics) await createTopicsOf(mappings, kafka, config, log);
      await uplink.checkFixedPartitions(mappings.uplink);
    },
    ruleCount: (mappings) => mappings.uplink.ruleCount + mappings.downlink.ruleCount,
    log,
    metrics,
  });
  reloader.onReloaded((mappings) => {
    uplink.replaceRouter(mappings.uplink);
    downlink.replaceRouter(mappings.downlink);
  });
  return reloader;
}

/** `kafka.createTopics`: the fixed topics of the rules (and dead-letter topics) Kafka lacks. */
async function createTopicsOf(
  mappings: Mappings,
  kafka: Kafka,
  config: BridgeConfig,
  log: Logger,
): Promise<void> {
  const topics = new Set([...mappings.uplink.kafkaTopics(), ...mappings.downlink.kafkaTopics()]);
  const deadLetter = mappings.downlink.deadLetterTopic;
  if (deadLetter !== undefined) topics.add(deadLetter);
  await createMissingTopics(
    kafka,
    [...topics],
    {
      partitions: config.kafka.createTopicsPartitions,
      replicationFactor: config.kafka.createTopicsReplicationFactor,
    },
    log,
  );
}

/** The sessions topics of sessions.store kafka, read before devices connect. */
function openSessionStore(
  kafka: Kafka,
  pipeline: ProducerPipeline,
  config: BridgeConfig,
  log: Logger,
): Promise<KafkaSessionStore> {
  const { sessions } = config;
  return KafkaSessionStore.open(
    kafka,
    pipeline,
    {
      instanceId: config.instance.id,
      clientId: config.kafka.clientId,
      sessionsTopic: sessions.topic,
      messagesTopic: sessions.messagesTopic,
      partitions: sessions.partitions,
      replicationFactor: config.kafka.createTopicsReplicationFactor,
      messagesRetentionMs: sessions.messagesRetentionMs,
      timeoutMs: config.kafka.connectTimeoutMs,
      instanceTimeoutMs: config.instance.timeoutMs,
    },
    log.child({ component: 'sessions' }),
  );
}

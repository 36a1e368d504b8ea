/**
 * A PRIVATE Kafka cluster for fault tests: n KRaft nodes (each broker AND controller, one JVM
 * each; scripts/kafka/local-cluster.ts), optionally with SASL_SSL client listeners (SCRAM-SHA-512,
 * and OAUTHBEARER with unsecured tokens — test/support/oauth-token.ts; a CA of its own), on free
 * ports with data in a temporary folder. A test may SIGKILL a node (a crash), start it again on
 * the same ports and data, stop it cleanly, and wait until it is back in the ISR; the shared test
 * Kafka is never touched.
 *
 *   const cluster = await startPrivateCluster({ nodes: 3, security: 'sasl-ssl' });
 *   await cluster.createTopic('t', { partitions: 6 });          // RF 3, min.insync.replicas 2
 *   const leader = await cluster.leaderOf('t', 0);
 *   await leader.kill();
 *   await cluster.waitForLeaders('t', { excluding: [leader.id] });
 *   await leader.start();
 *   await cluster.waitForIsr('t', 3);
 *   await cluster.destroy();
 *
 * Nodes die with the test process (they share its process group and are SIGKILLed on exit).
 * Failure detection is faster than Kafka's defaults (broker.session.timeout.ms 6 s instead of 9 s)
 * so that leaders move sooner after a kill; pass `settings` to change it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kafka, logLevel, type Admin, type KafkaConfig } from 'kafkajs';
import {
  ClusterNodeProcess,
  prepareCluster,
  waitForClusterReady,
  type KafkaSecurity,
  type PreparedCluster,
} from '../../scripts/kafka/local-cluster.js';
import { findFreePort, type KafkaClientSecurity } from '../../scripts/kafka/local-kafka.js';
import { bridgeKafkaEnv, kafkaJsSecurity } from '../../scripts/kafka/security.js';

const HOST = '127.0.0.1';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Broker settings the private cluster adds by default (faster failure detection). */
export const PRIVATE_CLUSTER_SETTINGS = [
  'broker.session.timeout.ms=6000',
  'broker.heartbeat.interval.ms=1000',
];

export interface PrivateClusterOptions {
  /** Default 3. */
  nodes?: number;
  /** Default 'none' (PLAINTEXT client listeners). */
  security?: KafkaSecurity;
  /** Broker settings after the defaults; default PRIVATE_CLUSTER_SETTINGS. */
  settings?: string[];
  /** How long the first start (all nodes) may take; default 120 s. */
  readyTimeoutMs?: number;
  /** Java heap per node in MB; default 512. */
  heapMb?: number;
}

export interface PartitionState {
  partition: number;
  /** Node id of the leader; -1 while there is none. */
  leader: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
}

export interface CreateTopicOptions {
  /** Default 1. */
  partitions?: number;
  /** Default min(nodes, 3). */
  replicationFactor?: number;
  /** Default 2 (1 on a cluster of fewer than 3 nodes). */
  minInsyncReplicas?: number;
  /** Further topic configs, e.g. { 'cleanup.policy': 'compact' }. */
  configs?: Record<string, string>;
}

/** One node of a PrivateCluster. */
export class PrivateClusterNode {
  readonly #process: ClusterNodeProcess;
  readonly #cluster: PrivateCluster;

  /** @internal */
  constructor(process: ClusterNodeProcess, cluster: PrivateCluster) {
    this.#process = process;
    this.#cluster = cluster;
  }

  /** node.id (1-based). */
  get id(): number {
    return this.#process.id;
  }

  /** Its client listener's port. */
  get port(): number {
    return this.#process.port;
  }

  /** `127.0.0.1:<port>` */
  get address(): string {
    return `${HOST}:${this.port}`;
  }

  /** Pid of the running JVM; undefined while it is down. */
  get pid(): number | undefined {
    return this.#process.pid;
  }

  get running(): boolean {
    return this.#process.running;
  }

  get logFile(): string {
    return this.#process.logFile;
  }

  /** SIGKILL: a crash, no controlled shutdown. Resolves once the process is gone. */
  async kill(): Promise<void> {
    await this.#process.kill();
  }

  /** SIGTERM: controlled shutdown (leaders moved away first); SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<void> {
    await this.#process.stop(timeoutMs);
  }

  /**
   * Starts the JVM again on the same ports and data. Resolves once the node takes requests on
   * its own client listener and the cluster's metadata lists it (it caught up and is unfenced);
   * it may still be catching up on replicas: see PrivateCluster.waitForIsr().
   *
   * Every node is a controller too: while fewer than a majority of the nodes run (counting this
   * one), there is no quorum and the node cannot rejoin yet, so start() resolves as soon as the
   * JVM runs; start the others as well, then PrivateCluster.waitForBrokers().
   */
  async start(timeoutMs = 60_000): Promise<void> {
    await this.#process.start();
    if (!this.#cluster.hasQuorum()) {
      await sleep(500);
      const exit = this.#process.exitReason;
      if (exit !== undefined) {
        throw new Error(`Kafka node ${this.id} exited at once (${exit})\n${await this.logTail()}`);
      }
      return;
    }
    const deadline = Date.now() + timeoutMs;
    const kafka = new Kafka({
      clientId: `private-cluster-probe-${this.id}`,
      brokers: [this.address],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 2_000,
      requestTimeout: 5_000,
      retry: { retries: 0 },
      ...this.#cluster.clientSecurity,
    });
    let lastError: unknown;
    for (;;) {
      const exit = this.#process.exitReason;
      if (exit !== undefined) {
        throw new Error(
          `Kafka node ${this.id} exited while starting (${exit})\n${await this.logTail()}`,
        );
      }
      const admin = kafka.admin({ retry: { retries: 0 } });
      try {
        // Kafka serves requests on a restarted broker's listeners only once the controller has
        // acknowledged that it caught up with the metadata (then it is unfenced at once).
        await admin.connect();
        try {
          const { brokers } = await admin.describeCluster();
          if (brokers.some((broker) => broker.nodeId === this.id)) return;
          lastError = new Error(`node ${this.id} not in the metadata yet`);
        } catch (error) {
          // KafkaJS's all-topics metadata fails while any partition has no leader (e.g. one whose
          // replicas are all on nodes still down): the node itself answered, that is enough.
          if ((error as Error).name === 'KafkaJSProtocolError') return;
          throw error;
        }
      } catch (error) {
        lastError = error;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
      if (Date.now() >= deadline) {
        throw new Error(
          `Kafka node ${this.id} did not rejoin within ${timeoutMs} ms ` +
            `(${(lastError as Error).message})\n${await this.logTail()}`,
        );
      }
      await sleep(250);
    }
  }

  /** The node's log's last lines, for failure messages. */
  logTail(lines = 30): Promise<string> {
    return this.#process.logTail(lines);
  }
}

export class PrivateCluster {
  /** Temporary folder with the nodes' data (removed by destroy()). */
  readonly dataDir: string;
  readonly security: KafkaSecurity;
  readonly nodes: readonly PrivateClusterNode[];
  /** CA PEM file the brokers' certificate is signed by (sasl-ssl), else undefined. */
  readonly caFile: string | undefined;
  readonly caPem: string | undefined;
  /** The SCRAM-SHA-512 user (sasl-ssl), else undefined. */
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly mechanism: 'scram-sha-512' | undefined;
  readonly #prepared: PreparedCluster;

  /** @internal use startPrivateCluster() */
  constructor(prepared: PreparedCluster, processes: ClusterNodeProcess[]) {
    this.#prepared = prepared;
    this.dataDir = prepared.dataDir;
    this.security = prepared.spec.security;
    this.nodes = processes.map((process) => new PrivateClusterNode(process, this));
    const material = prepared.material;
    this.caFile = material?.caFile;
    this.caPem = material?.caPem;
    this.username = material?.username;
    this.password = material?.password;
    this.mechanism = material?.mechanism;
  }

  /** Bootstrap list: every node's client listener, `127.0.0.1:p1,127.0.0.1:p2,...`. */
  get brokers(): string {
    return this.#prepared.brokers;
  }

  /** KafkaJS `ssl` / `sasl` for the client listeners ({} when PLAINTEXT). */
  get clientSecurity(): KafkaClientSecurity {
    return this.#prepared.clientSecurity;
  }

  /** KafkaJS settings with another password (to check that a wrong one is refused). */
  clientSecurityWithPassword(password: string): KafkaClientSecurity {
    const material = this.#prepared.material;
    if (!material) throw new Error('the private cluster has no SASL');
    return kafkaJsSecurity(material, password);
  }

  /**
   * The BRIDGE_KAFKA_* variables of a bridge process using this cluster: BRIDGE_KAFKA_BROKERS,
   * and for sasl-ssl BRIDGE_KAFKA_SSL_ENABLED, _SSL_CA_FILE, _SASL_MECHANISM, _SASL_USERNAME,
   * _SASL_PASSWORD.
   */
  bridgeEnv(): Record<string, string> {
    return bridgeKafkaEnv(this.brokers, this.#prepared.material);
  }

  /** A KafkaJS client of the whole cluster (security applied, logging off unless overridden). */
  client(config: Partial<KafkaConfig> = {}): Kafka {
    return new Kafka({
      clientId: `private-cluster-${randomBytes(4).toString('hex')}`,
      brokers: this.brokers.split(','),
      logLevel: logLevel.NOTHING,
      ...this.clientSecurity,
      ...config,
    });
  }

  /** Whether a majority of the nodes (the KRaft voters) run. */
  hasQuorum(): boolean {
    const running = this.nodes.filter((node) => node.running).length;
    return running > this.nodes.length / 2;
  }

  node(id: number): PrivateClusterNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (!node) throw new Error(`no node ${id} in the private cluster`);
    return node;
  }

  /**
   * Creates a topic (RF min(nodes, 3), min.insync.replicas 2 by default) and waits until every
   * partition has a leader.
   */
  async createTopic(topic: string, options: CreateTopicOptions = {}): Promise<void> {
    const replicationFactor = options.replicationFactor ?? Math.min(this.nodes.length, 3);
    const minIsr = options.minInsyncReplicas ?? (this.nodes.length >= 3 ? 2 : 1);
    const configs = { 'min.insync.replicas': String(minIsr), ...options.configs };
    await this.#withAdmin(async (admin) => {
      await admin.createTopics({
        topics: [
          {
            topic,
            numPartitions: options.partitions ?? 1,
            replicationFactor,
            configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })),
          },
        ],
        // KafkaJS's waitForLeaders gives up on UNKNOWN_TOPIC_OR_PARTITION from a broker the new
        // topic's metadata has not reached yet: poll instead.
        waitForLeaders: false,
      });
    });
    const partitions = options.partitions ?? 1;
    await this.#poll(`leaders of the new topic ${topic}`, { timeoutMs: 30_000 }, async () => {
      const state = await this.describeTopic(topic);
      return state.length === partitions && state.every((p) => p.leader >= 0) ? true : undefined;
    });
  }

  /** Leader, replicas and ISR of every partition of `topic`, by partition (fresh metadata). */
  async describeTopic(topic: string): Promise<PartitionState[]> {
    return this.#withAdmin(async (admin) => {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = metadata.topics.find((entry) => entry.name === topic)?.partitions ?? [];
      return partitions
        .map((partition) => ({
          partition: partition.partitionId,
          leader: partition.leader,
          replicas: partition.replicas,
          isr: partition.isr,
          offlineReplicas: partition.offlineReplicas ?? [],
        }))
        .sort((a, b) => a.partition - b.partition);
    });
  }

  /** The node leading `topic`/`partition` now, or undefined while there is no leader. */
  async leaderOf(topic: string, partition: number): Promise<PrivateClusterNode | undefined> {
    const state = (await this.describeTopic(topic)).find((p) => p.partition === partition);
    if (!state) throw new Error(`no partition ${partition} in ${topic}`);
    return this.nodes.find((node) => node.id === state.leader);
  }

  /**
   * Waits until every partition of `topic` has a leader, none of them in `excluding` (e.g. a
   * node just killed: Kafka fences it after broker.session.timeout.ms).
   */
  async waitForLeaders(
    topic: string,
    options: { excluding?: number[]; timeoutMs?: number } = {},
  ): Promise<PartitionState[]> {
    const excluding = options.excluding ?? [];
    return this.#poll(
      `leaders of ${topic} outside [${excluding.join(', ')}]`,
      options,
      async () => {
        const partitions = await this.describeTopic(topic);
        const ok =
          partitions.length > 0 &&
          partitions.every((p) => p.leader >= 0 && !excluding.includes(p.leader));
        return ok ? partitions : undefined;
      },
    );
  }

  /**
   * Waits until every partition of each topic has at least `expectedSize` replicas in sync (e.g. a
   * restarted node caught up again). Default size: the topic's replication factor.
   */
  async waitForIsr(
    topics: string | string[],
    expectedSize?: number,
    timeoutMs = 60_000,
  ): Promise<void> {
    const list = Array.isArray(topics) ? topics : [topics];
    await this.#poll(
      `ISR of ${list.join(', ')} at ${expectedSize ?? 'full'} size`,
      { timeoutMs },
      async () => {
        for (const topic of list) {
          const partitions = await this.describeTopic(topic);
          if (partitions.length === 0) return undefined;
          const short = partitions.some(
            (p) => p.isr.length < (expectedSize ?? p.replicas.length) || p.leader < 0,
          );
          if (short) return undefined;
        }
        return true;
      },
    );
  }

  /**
   * Waits until the metadata lists `count` brokers (default: all nodes). KafkaJS reads it with an
   * all-topics metadata request, which fails while any partition has no leader: this waits for
   * that too.
   */
  async waitForBrokers(count = this.nodes.length, timeoutMs = 60_000): Promise<void> {
    await this.#poll(`${count} brokers`, { timeoutMs }, async () =>
      this.#withAdmin(async (admin) =>
        (await admin.describeCluster()).brokers.length >= count ? true : undefined,
      ),
    );
  }

  /** Every node's log tail, for failure messages. */
  async logTails(lines = 20): Promise<string> {
    const tails = await Promise.all(
      this.nodes.map(async (node) => `--- node ${node.id} ---\n${await node.logTail(lines)}`),
    );
    return tails.join('\n');
  }

  /** SIGKILLs every node and removes the data. */
  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.kill().catch(() => undefined)));
    await rm(this.dataDir, { recursive: true, force: true });
  }

  async #withAdmin<T>(action: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = this.client({
      connectionTimeout: 2_000,
      requestTimeout: 10_000,
      retry: { retries: 2, initialRetryTime: 200 },
    }).admin();
    await admin.connect();
    try {
      return await action(admin);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async #poll<T>(
    what: string,
    options: { timeoutMs?: number },
    probe: () => Promise<T | undefined>,
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      try {
        const result = await probe();
        if (result !== undefined) return result;
      } catch (error) {
        lastError = error;
      }
      if (Date.now() >= deadline) {
        const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
        throw new Error(`private cluster: no ${what} within ${timeoutMs} ms${cause}`);
      }
      await sleep(250);
    }
  }
}

/**
 * Starts a private cluster on free ports (data in a new temporary folder) and resolves once every
 * node is registered and the cluster takes acks=all produce requests.
 */
export async function startPrivateCluster(
  options: PrivateClusterOptions = {},
): Promise<PrivateCluster> {
  const nodes = options.nodes ?? 3;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'bridge-private-cluster-'));
  const processes: ClusterNodeProcess[] = [];
  try {
    const ports: number[] = [];
    while (ports.length < nodes) {
      const port = await findFreePort(HOST);
      if (!ports.includes(port)) ports.push(port);
    }
    const prepared = await prepareCluster({
      dataDir,
      nodes,
      ports,
      security: options.security ?? 'none',
      host: HOST,
      settings: options.settings ?? PRIVATE_CLUSTER_SETTINGS,
    });
    for (const node of prepared.spec.nodes) {
      processes.push(
        new ClusterNodeProcess(prepared, node, { detached: false, heapMb: options.heapMb }),
      );
    }
    for (const node of processes) await node.start();
    await waitForClusterReady(prepared, processes, { timeoutMs: options.readyTimeoutMs });
    return new PrivateCluster(prepared, processes);
  } catch (error) {
    await Promise.all(processes.map((node) => node.kill().catch(() => undefined)));
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

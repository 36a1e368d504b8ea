/**
 * A local Kafka cluster (KRaft; every node is broker AND controller, one JVM each) from the same
 * Maven Central jars as the single node of local-kafka.ts, optionally with a SASL_SSL client
 * listener (security.ts). Used by `npm run kafka:start -- --nodes 3 [--security sasl-ssl]` and by
 * the tests' private cluster (test/support/private-cluster.ts).
 *
 * Each node has three listeners, all on the loopback interface:
 *
 *   CLIENT      the node's client port (PLAINTEXT, or SASL_SSL with SCRAM-SHA-512 and
 *               OAUTHBEARER with unsecured tokens: security.ts saslSslBrokerSettings)
 *   INTERNAL    replication between the brokers: PLAINTEXT
 *   CONTROLLER  the KRaft quorum: PLAINTEXT
 *
 * Layout of a cluster's data dir:
 *
 *   cluster.json             ports, cluster id and security of the nodes (see ClusterSpec)
 *   security/                CA, broker keystore (PEM) and the SCRAM user (sasl-ssl only)
 *   node-<id>/               server.properties, kafka.pid, kafka.log and the data in logs/
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import {
  ensureKafkaJars,
  findFreePort,
  findRunningLocalKafka,
  formatKafkaStorage,
  isPortFree,
  isProcessAlive,
  kafkaDataHome,
  KAFKA_VERSION,
  localKafkaDataDir,
  newClusterId,
  requireJava,
  SINGLE_NODE_SETTINGS,
  spawnKafkaJvm,
  stopProcess,
  tailFile,
  waitForKafkaReady,
  type KafkaClientSecurity,
  killNow,
} from './local-kafka.js';
import {
  ensureSecurityMaterial,
  kafkaJsSecurity,
  saslSslBrokerSettings,
  scramCredential,
  type KafkaSecurityMaterial,
} from './security.js';

export type KafkaSecurity = 'none' | 'sasl-ssl';
export const KAFKA_SECURITIES: readonly KafkaSecurity[] = ['none', 'sasl-ssl'];

const SPEC_FILE = 'cluster.json';
const SECURITY_DIR = 'security';
const PID_FILE = 'kafka.pid';
const PROPERTIES_FILE = 'server.properties';
const DEFAULT_HOST = '127.0.0.1';

export interface ClusterNodeSpec {
  /** node.id, 1-based. */
  id: number;
  /** CLIENT listener. */
  port: number;
  /** INTERNAL (inter-broker) listener. */
  internalPort: number;
  /** CONTROLLER listener. */
  controllerPort: number;
}

/** What cluster.json holds. */
export interface ClusterSpec {
  kafkaVersion: string;
  host: string;
  clusterId: string;
  security: KafkaSecurity;
  nodes: ClusterNodeSpec[];
  /** Broker settings after the defaults (later ones win). */
  settings: string[];
}

/**
 * Replication settings of an n-node cluster. One node: SINGLE_NODE_SETTINGS. Three or more: every
 * topic (and the internal ones) has 3 replicas and needs 2 in sync, so a topic stays writable with
 * acks=all while one node is down, and leaders move when a node dies.
 */
export function replicationSettings(nodes: number): string[] {
  if (nodes <= 1) return SINGLE_NODE_SETTINGS;
  const replicas = Math.min(nodes, 3);
  const minIsr = replicas >= 3 ? 2 : 1;
  return [
    'num.partitions=3',
    `default.replication.factor=${replicas}`,
    `min.insync.replicas=${minIsr}`,
    `offsets.topic.replication.factor=${replicas}`,
    'offsets.topic.num.partitions=10',
    `transaction.state.log.replication.factor=${replicas}`,
    `transaction.state.log.min.isr=${minIsr}`,
    'transaction.state.log.num.partitions=10',
    `share.coordinator.state.topic.replication.factor=${replicas}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    'unclean.leader.election.enable=false',
    'group.initial.rebalance.delay.ms=0',
  ];
}

export function clusterNodeDir(dataDir: string, id: number): string {
  return path.join(dataDir, `node-${id}`);
}

export function clusterSecurityDir(dataDir: string): string {
  return path.join(dataDir, SECURITY_DIR);
}

/** Bootstrap list of a cluster: every node's client listener. */
export function clusterBrokers(spec: Pick<ClusterSpec, 'host' | 'nodes'>): string {
  return spec.nodes.map((node) => `${spec.host}:${node.port}`).join(',');
}

export function readClusterSpec(dataDir: string): ClusterSpec | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dataDir, SPEC_FILE), 'utf8')) as ClusterSpec;
  } catch {
    return undefined;
  }
}

function nodeProperties(
  spec: ClusterSpec,
  node: ClusterNodeSpec,
  dataDir: string,
  material: KafkaSecurityMaterial | undefined,
): string {
  const { host } = spec;
  const clientProtocol = spec.security === 'sasl-ssl' ? 'SASL_SSL' : 'PLAINTEXT';
  return [
    `# Written by scripts/kafka/local-cluster.ts (Kafka ${KAFKA_VERSION}, node ${node.id} of ` +
      `${spec.nodes.length}); rewritten on every start.`,
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${spec.nodes.map((n) => `${n.id}@${host}:${n.controllerPort}`).join(',')}`,
    `listeners=CLIENT://${host}:${node.port},INTERNAL://${host}:${node.internalPort},` +
      `CONTROLLER://${host}:${node.controllerPort}`,
    `advertised.listeners=CLIENT://${host}:${node.port},INTERNAL://${host}:${node.internalPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=INTERNAL',
    `listener.security.protocol.map=CLIENT:${clientProtocol},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT`,
    `log.dirs=${path.join(clusterNodeDir(dataDir, node.id), 'logs')}`,
    ...(material ? saslSslBrokerSettings(material, 'CLIENT') : []),
    ...replicationSettings(spec.nodes.length),
    ...spec.settings,
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Preparing a cluster: spec, security material, properties, formatted storage
// ---------------------------------------------------------------------------------------------

export interface PrepareClusterOptions {
  dataDir: string;
  nodes: number;
  /** Client port of each node (`nodes` of them). */
  ports: number[];
  security: KafkaSecurity;
  host?: string;
  /** Broker settings appended after the defaults (later ones win). */
  settings?: string[];
}

export interface PreparedCluster {
  spec: ClusterSpec;
  dataDir: string;
  /** `<libDir>/*` */
  classpath: string;
  /** The SASL_SSL material (security 'sasl-ssl'). */
  material: KafkaSecurityMaterial | undefined;
  /** KafkaJS ssl/sasl settings for the client listener ({} for PLAINTEXT). */
  clientSecurity: KafkaClientSecurity;
  brokers: string;
}

/**
 * Makes `dataDir` ready to run: writes cluster.json (keeping the cluster id and, when they are
 * still free, the internal and controller ports of an earlier start), the security material, each
 * node's server.properties, and formats each node's storage unless formatted already.
 */
export async function prepareCluster(options: PrepareClusterOptions): Promise<PreparedCluster> {
  const host = options.host ?? DEFAULT_HOST;
  const dataDir = path.resolve(options.dataDir);
  if (options.ports.length !== options.nodes) {
    throw new Error(`${options.nodes} nodes need ${options.nodes} client ports`);
  }
  const libDir = await ensureKafkaJars({ log: undefined });
  requireJava();
  const classpath = path.join(libDir, '*');
  await fs.mkdir(dataDir, { recursive: true });

  const previous = readClusterSpec(dataDir);
  const formatted = options.ports.some((_, index) =>
    existsSync(path.join(clusterNodeDir(dataDir, index + 1), 'logs', 'meta.properties')),
  );
  if (formatted && previous === undefined) {
    throw new Error(`${dataDir} holds Kafka data but no ${SPEC_FILE}; remove the folder first`);
  }
  if (
    formatted &&
    previous &&
    (previous.nodes.length !== options.nodes || previous.security !== options.security)
  ) {
    throw new Error(
      `${dataDir} holds the data of a ${previous.nodes.length}-node Kafka with security ` +
        `${previous.security}; remove the folder to start a different one there`,
    );
  }

  // Internal and controller ports: kept from the last start when free, else new free ones.
  const taken = new Set<number>(options.ports);
  const portFor = async (kept: number | undefined): Promise<number> => {
    if (kept !== undefined && !taken.has(kept) && (await isPortFree(kept, host))) {
      taken.add(kept);
      return kept;
    }
    for (;;) {
      const port = await findFreePort(host);
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  const nodes: ClusterNodeSpec[] = [];
  for (const [index, port] of options.ports.entries()) {
    const before = previous?.nodes[index];
    nodes.push({
      id: index + 1,
      port,
      internalPort: await portFor(before?.internalPort),
      controllerPort: await portFor(before?.controllerPort),
    });
  }
  const spec: ClusterSpec = {
    kafkaVersion: KAFKA_VERSION,
    host,
    clusterId: formatted && previous ? previous.clusterId : newClusterId(),
    security: options.security,
    nodes,
    settings: options.settings ?? [],
  };
  await fs.writeFile(path.join(dataDir, SPEC_FILE), `${JSON.stringify(spec, null, 2)}\n`);

  const material =
    options.security === 'sasl-ssl'
      ? await ensureSecurityMaterial(clusterSecurityDir(dataDir))
      : undefined;

  await Promise.all(
    nodes.map(async (node) => {
      const nodeDir = clusterNodeDir(dataDir, node.id);
      await fs.mkdir(nodeDir, { recursive: true });
      const propertiesFile = path.join(nodeDir, PROPERTIES_FILE);
      await fs.writeFile(propertiesFile, nodeProperties(spec, node, dataDir, material));
      await formatKafkaStorage(classpath, propertiesFile, nodeDir, {
        clusterId: spec.clusterId,
        scram: material ? [scramCredential(material)] : [],
      });
    }),
  );

  return {
    spec,
    dataDir,
    classpath,
    material,
    clientSecurity: material ? kafkaJsSecurity(material) : {},
    brokers: clusterBrokers(spec),
  };
}

// ---------------------------------------------------------------------------------------------
// One node's process
// ---------------------------------------------------------------------------------------------

/**
 * The JVM of one node. `start()` spawns it and writes its pid file; `pid` is that of the process
 * this object spawned, or else of the one its pid file names (started by another process).
 */
export class ClusterNodeProcess {
  readonly id: number;
  readonly port: number;
  readonly dir: string;
  readonly logFile: string;
  readonly propertiesFile: string;
  readonly #pidFile: string;
  readonly #classpath: string;
  readonly #detached: boolean;
  readonly #heapMb: number | undefined;
  #child: ChildProcess | undefined;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #killOnExit = (): void => {
    killNow(this.#child?.pid);
  };

  constructor(
    prepared: Pick<PreparedCluster, 'dataDir' | 'classpath'>,
    node: ClusterNodeSpec,
    options: { detached?: boolean; heapMb?: number } = {},
  ) {
    this.id = node.id;
    this.port = node.port;
    this.dir = clusterNodeDir(prepared.dataDir, node.id);
    this.logFile = path.join(this.dir, 'kafka.log');
    this.propertiesFile = path.join(this.dir, PROPERTIES_FILE);
    this.#pidFile = path.join(this.dir, PID_FILE);
    this.#classpath = prepared.classpath;
    this.#detached = options.detached ?? true;
    this.#heapMb = options.heapMb;
  }

  /** The live process's pid, or undefined. */
  get pid(): number | undefined {
    const child = this.#child;
    if (child) return this.#exit === undefined && child.pid !== undefined ? child.pid : undefined;
    return runningNodePid(this.dir);
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  /** Why the process this object spawned exited, if it did. */
  get exitReason(): string | undefined {
    const exit = this.#exit;
    if (!exit) return undefined;
    return exit.signal ? `signal ${exit.signal}` : `code ${exit.code ?? '?'}`;
  }

  /** Spawns the JVM (does not wait for readiness). */
  async start(): Promise<number> {
    if (this.running) throw new Error(`Kafka node ${this.id} is already running`);
    const child = await spawnKafkaJvm({
      classpath: this.#classpath,
      propertiesFile: this.propertiesFile,
      cwd: this.dir,
      logFile: this.logFile,
      detached: this.#detached,
      heapMb: this.#heapMb,
      banner: `starting Kafka ${KAFKA_VERSION} node ${this.id}`,
    });
    if (child.pid === undefined) throw new Error('Could not start java (no pid)');
    this.#child = child;
    this.#exit = undefined;
    child.once('exit', (code, signal) => {
      if (this.#child === child) this.#exit = { code, signal };
    });
    await fs.writeFile(this.#pidFile, `${child.pid}\n`);
    if (!this.#detached) process.once('exit', this.#killOnExit);
    return child.pid;
  }

  /** SIGKILL (a crash: no controlled shutdown); resolves once the process is gone. */
  async kill(): Promise<void> {
    const pid = this.pid;
    if (pid !== undefined) {
      for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      }
      await stopProcess(pid, 10_000);
    }
    await this.#forget();
  }

  /** SIGTERM (controlled shutdown), SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<void> {
    const pid = this.pid;
    if (pid !== undefined) await stopProcess(pid, timeoutMs);
    await this.#forget();
  }

  logTail(lines = 30): Promise<string> {
    return tailFile(this.logFile, lines);
  }

  async #forget(): Promise<void> {
    this.#child = undefined;
    this.#exit = undefined;
    process.removeListener('exit', this.#killOnExit);
    await fs.rm(this.#pidFile, { force: true });
  }
}

/** The pid in a node dir's pid file, when it names a live Kafka of that dir. */
function runningNodePid(nodeDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(path.join(nodeDir, PID_FILE), 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || !isProcessAlive(pid)) return undefined;
  try {
    const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!commandLine.includes(path.join(nodeDir, PROPERTIES_FILE))) return undefined;
  } catch {
    // no procfs (macOS): trust the pid file
  }
  return pid;
}

// ---------------------------------------------------------------------------------------------
// A whole cluster, for `npm run kafka:start` / `kafka:stop`
// ---------------------------------------------------------------------------------------------

export interface LocalClusterOptions {
  dataDir: string;
  nodes: number;
  /** Client port of node 1; node i listens on `port + i - 1`. */
  port: number;
  security: KafkaSecurity;
  host?: string;
  /** Broker settings appended after the defaults. */
  settings?: string[];
  /** Own process group per node (default, survives the caller), or the caller's. */
  detached?: boolean;
  /** Java max heap per node in MB; default 512. */
  heapMb?: number;
  /** Default 120 s. */
  readyTimeoutMs?: number;
  log?: (message: string) => void;
  signal?: AbortSignal;
}

export interface LocalClusterNode {
  id: number;
  port: number;
  pid: number;
  logFile: string;
}

export interface LocalCluster {
  brokers: string;
  dataDir: string;
  security: KafkaSecurity;
  nodes: LocalClusterNode[];
  material: KafkaSecurityMaterial | undefined;
  clientSecurity: KafkaClientSecurity;
  /** Stops every node (SIGTERM, all at once; SIGKILL after 30 s). */
  stop(): Promise<void>;
}

/** Waits until every node of a started cluster takes produce requests; fails fast if one dies. */
export async function waitForClusterReady(
  prepared: PreparedCluster,
  nodes: ClusterNodeProcess[],
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  try {
    await waitForKafkaReady(prepared.brokers, {
      timeoutMs: options.timeoutMs ?? 120_000,
      signal: options.signal,
      security: prepared.clientSecurity,
      brokerCount: nodes.length,
      check: () => {
        const dead = nodes.find((node) => node.exitReason !== undefined);
        return dead
          ? new Error(`Kafka node ${dead.id} exited during startup (${dead.exitReason ?? ''})`)
          : undefined;
      },
    });
  } catch (error) {
    const tails = await Promise.all(
      nodes.map(async (node) => `--- last lines of ${node.logFile} ---\n${await node.logTail(20)}`),
    );
    throw new Error(`${(error as Error).message}\n${tails.join('\n')}`);
  }
}

/**
 * Starts a cluster of `nodes` nodes on ports `port`, `port+1`, ... (data in `dataDir`) and resolves
 * once every node is registered and the cluster takes acks=all produce requests.
 */
export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const host = options.host ?? DEFAULT_HOST;
  const ports = Array.from({ length: options.nodes }, (_, index) => options.port + index);
  const dataDir = path.resolve(options.dataDir);
  await ensureKafkaJars({ log: options.log });

  const running = await findRunningLocalCluster(dataDir);
  if (running) {
    throw new Error(
      `A Kafka cluster (pids ${running.nodes.map((node) => node.pid).join(', ')}) is already ` +
        `running at ${running.brokers}`,
    );
  }
  for (const port of ports) {
    if (port > 65_535 || !(await isPortFree(port, host))) {
      throw new Error(`Cannot start Kafka: port ${port} on ${host} is not available`);
    }
  }

  const prepared = await prepareCluster({
    dataDir,
    nodes: options.nodes,
    ports,
    security: options.security,
    host,
    settings: options.settings,
  });
  const nodes = prepared.spec.nodes.map(
    (node) =>
      new ClusterNodeProcess(prepared, node, {
        detached: options.detached ?? true,
        heapMb: options.heapMb,
      }),
  );
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    for (const node of nodes) await node.start();
    await waitForClusterReady(prepared, nodes, {
      timeoutMs: options.readyTimeoutMs,
      signal: options.signal,
    });
  } catch (error) {
    await Promise.all(nodes.map((node) => node.kill().catch(() => undefined)));
    throw error;
  }
  return {
    brokers: prepared.brokers,
    dataDir,
    security: options.security,
    nodes: nodes.map((node) => ({
      id: node.id,
      port: node.port,
      pid: node.pid ?? -1,
      logFile: node.logFile,
    })),
    material: prepared.material,
    clientSecurity: prepared.clientSecurity,
    stop,
  };
}

/**
 * Starts the nodes of the cluster in `dataDir` that are not running (e.g. one killed with
 * `kill -9`), with the settings they were started with, and waits until the cluster is ready.
 * Returns the ids of the nodes started.
 */
export async function startMissingNodes(
  dataDir: string,
  options: { readyTimeoutMs?: number; signal?: AbortSignal; detached?: boolean } = {},
): Promise<number[]> {
  const spec = readClusterSpec(dataDir);
  if (!spec) throw new Error(`No ${SPEC_FILE} in ${dataDir}`);
  const libDir = await ensureKafkaJars();
  requireJava();
  const material =
    spec.security === 'sasl-ssl'
      ? await ensureSecurityMaterial(clusterSecurityDir(dataDir))
      : undefined;
  const prepared: PreparedCluster = {
    spec,
    dataDir,
    classpath: path.join(libDir, '*'),
    material,
    clientSecurity: material ? kafkaJsSecurity(material) : {},
    brokers: clusterBrokers(spec),
  };
  const nodes = spec.nodes.map(
    (node) => new ClusterNodeProcess(prepared, node, { detached: options.detached ?? true }),
  );
  const missing = nodes.filter((node) => !node.running);
  for (const node of missing) await node.start();
  await waitForClusterReady(prepared, nodes, {
    timeoutMs: options.readyTimeoutMs,
    signal: options.signal,
  });
  return missing.map((node) => node.id);
}

export interface RunningCluster {
  brokers: string;
  dataDir: string;
  spec: ClusterSpec;
  /** The nodes whose process runs. */
  nodes: { id: number; port: number; pid: number }[];
}

/** The nodes of the cluster in `dataDir` whose pid files name a live Kafka (none: undefined). */
export async function findRunningLocalCluster(
  dataDir: string,
): Promise<RunningCluster | undefined> {
  const spec = readClusterSpec(dataDir);
  if (!spec) return undefined;
  const nodes: RunningCluster['nodes'] = [];
  for (const node of spec.nodes) {
    const nodeDir = clusterNodeDir(dataDir, node.id);
    const pid = runningNodePid(nodeDir);
    if (pid === undefined) await fs.rm(path.join(nodeDir, PID_FILE), { force: true });
    else nodes.push({ id: node.id, port: node.port, pid });
  }
  if (nodes.length === 0) return undefined;
  return { brokers: clusterBrokers(spec), dataDir, spec, nodes };
}

/**
 * Stops every running node of the cluster in `dataDir`: SIGTERM to all at once (each does a
 * controlled shutdown while the quorum is still there), SIGKILL after `timeoutMs`.
 */
export async function stopLocalCluster(
  dataDir: string,
  timeoutMs = 30_000,
): Promise<RunningCluster | undefined> {
  const running = await findRunningLocalCluster(dataDir);
  if (!running) return undefined;
  await Promise.all(
    running.nodes.map(async (node) => {
      await stopProcess(node.pid, timeoutMs);
      await fs.rm(path.join(clusterNodeDir(dataDir, node.id), PID_FILE), { force: true });
    }),
  );
  return running;
}

/** The security material of a prepared sasl-ssl cluster in `dataDir` (made if missing). */
export function clusterSecurityMaterial(dataDir: string): Promise<KafkaSecurityMaterial> {
  return ensureSecurityMaterial(clusterSecurityDir(dataDir));
}

// ---------------------------------------------------------------------------------------------
// Data dirs of `npm run kafka:start` per port
// ---------------------------------------------------------------------------------------------

/**
 * Data dir of `npm run kafka:start` for a port and kind: `.kafka/data-<port>` for the plain single
 * node (as always), else `.kafka/data-<port>-<n>nodes[-sasl-ssl]` (in KAFKA_DATA_DIR if set).
 */
export function localDataDir(port: number, nodes: number, security: KafkaSecurity): string {
  if (nodes <= 1 && security === 'none') return localKafkaDataDir(port);
  const parts = [`data-${port}`];
  if (nodes > 1) parts.push(`${nodes}nodes`);
  if (security !== 'none') parts.push(security);
  return path.join(kafkaDataHome(), parts.join('-'));
}

/** The existing data dirs of `npm run kafka:start` for `port` (any kind). */
export async function localDataDirsOfPort(port: number): Promise<string[]> {
  const home = kafkaDataHome();
  let names: string[];
  try {
    names = await fs.readdir(home);
  } catch {
    return [];
  }
  return names
    .filter((name) => name === `data-${port}` || name.startsWith(`data-${port}-`))
    .sort()
    .map((name) => path.join(home, name));
}

export interface RunningLocalKafka {
  dataDir: string;
  brokers: string;
  /** Running nodes (one for a single-node Kafka). */
  nodes: { id: number; port: number; pid: number }[];
  /** Set for a cluster (or a secured single node) of local-cluster.ts. */
  cluster?: RunningCluster;
}

/** Every Kafka `npm run kafka:start` runs for `port`, whatever its kind. */
export async function findRunningOnPort(port: number): Promise<RunningLocalKafka[]> {
  const found: RunningLocalKafka[] = [];
  for (const dataDir of await localDataDirsOfPort(port)) {
    if (readClusterSpec(dataDir)) {
      const cluster = await findRunningLocalCluster(dataDir);
      if (cluster) found.push({ dataDir, brokers: cluster.brokers, nodes: cluster.nodes, cluster });
    } else {
      const single = await findRunningLocalKafka(dataDir);
      if (single) {
        found.push({
          dataDir,
          brokers: single.brokers,
          nodes: [{ id: 1, port, pid: single.pid }],
        });
      }
    }
  }
  return found;
}

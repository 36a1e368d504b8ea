/**
 * A single-node Apache Kafka (KRaft, broker + controller in one JVM) run straight from the jars on
 * Maven Central — no Docker needed, only Java 17+ and Maven.
 *
 * Used by `npm run kafka:start` / `kafka:stop` and by the integration tests' global setup.
 * The Kafka version lives in ONE place: the `<kafka.version>` property of scripts/kafka/pom.xml.
 * A multi-node cluster and a SASL_SSL listener: local-cluster.ts and security.ts, on the jars,
 * storage formatting, JVM spawning and readiness probe of this file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, Partitioners, type KafkaConfig } from 'kafkajs';
import { installRequestQueueTimeout } from '../../src/kafka/request-queue-timeout.js';

// the readiness probe's KafkaJS client would print Node 23+'s TimeoutNegativeWarning otherwise
installRequestQueueTimeout();

/** Repository root (this file is scripts/kafka/local-kafka.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Git-ignored home of the fetched jars and of `kafka:start`'s data dirs. */
export const KAFKA_HOME = path.join(REPO_ROOT, '.kafka');
export const KAFKA_POM = path.join(REPO_ROOT, 'scripts', 'kafka', 'pom.xml');

function readKafkaVersion(): string {
  const pom = readFileSync(KAFKA_POM, 'utf8');
  const match = /<kafka\.version>\s*([^<\s]+)\s*<\/kafka\.version>/.exec(pom);
  if (!match?.[1]) throw new Error(`No <kafka.version> property in ${KAFKA_POM}`);
  return match[1];
}

/** The pinned Kafka version, read from the `<kafka.version>` property of scripts/kafka/pom.xml. */
export const KAFKA_VERSION: string = readKafkaVersion();

/** Topic the readiness probe creates and produces to. */
export const READY_TOPIC = '__bridge_ready';

const COMPLETE_MARKER = '.complete';
const PID_FILE = 'kafka.pid';
const PROPERTIES_FILE = 'server.properties';
const DEFAULT_HOST = '127.0.0.1';
const MIN_JAVA = 17;

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function lastLines(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** The last `lines` lines of a (log) file, or a note that it is missing. */
export async function tailFile(file: string, lines = 40): Promise<string> {
  try {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, 64 * 1024);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return lastLines(buffer.toString('utf8'), lines);
    } finally {
      await handle.close();
    }
  } catch (error) {
    return `(cannot read ${file}: ${errorMessage(error)})`;
  }
}

/** A new random KRaft cluster id (never starting with '-', which StorageTool takes for a flag). */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export interface FormatStorageOptions {
  /** Cluster id (all nodes of a cluster share one); default a new one. */
  clusterId?: string;
  /**
   * SCRAM credentials written into the bootstrap metadata, in StorageTool's `--add-scram` syntax,
   * e.g. `SCRAM-SHA-512=[name=alice,password=secret]`.
   */
  scram?: string[];
}

/**
 * Formats the KRaft storage of `dataDir` (logs/) with a new cluster id, unless it was formatted
 * already.
 */
export async function formatKafkaStorage(
  classpath: string,
  propertiesFile: string,
  dataDir: string,
  options: FormatStorageOptions = {},
): Promise<void> {
  if (existsSync(path.join(dataDir, 'logs', 'meta.properties'))) return;
  const clusterId = options.clusterId ?? newClusterId();
  const { code, output } = await run(
    'java',
    [
      '-cp',
      classpath,
      'kafka.tools.StorageTool',
      'format',
      '--ignore-formatted',
      '-t',
      clusterId,
      '-c',
      propertiesFile,
      ...(options.scram ?? []).flatMap((credential) => ['--add-scram', credential]),
    ],
    dataDir,
  );
  if (code !== 0) {
    throw new Error(`Formatting Kafka storage in ${dataDir} failed (exit ${code}):\n${output}`);
  }
}

function run(
  command: string,
  args: string[],
  cwd?: string,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => {
      resolve({ code: code ?? 1, output });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Prerequisites and jars
// ---------------------------------------------------------------------------------------------

/** Throws a helpful error unless Java 17+ is on the PATH. */
export function requireJava(): void {
  const result = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new Error(
      `Java ${MIN_JAVA}+ is needed to run a local Kafka, but \`java\` was not found on the PATH ` +
        `(${result.error ? errorMessage(result.error) : `exit ${result.status ?? '?'}`}). ` +
        `Install a JDK/JRE ${MIN_JAVA}+ (e.g. \`apt-get install openjdk-17-jre-headless\`, ` +
        `\`brew install openjdk@17\`), or point the tests at an existing Kafka with KAFKA_BROKERS=host:port.`,
    );
  }
  const banner = `${result.stderr}${result.stdout}`;
  const match = /version "(\d+)(?:\.(\d+))?/.exec(banner);
  const major = match?.[1] === '1' ? Number(match[2]) : Number(match?.[1]);
  if (Number.isFinite(major) && major < MIN_JAVA) {
    throw new Error(
      `Kafka ${KAFKA_VERSION} needs Java ${MIN_JAVA}+, but \`java -version\` reports ${major}. ` +
        `Install Java ${MIN_JAVA}+ and put it first on the PATH.`,
    );
  }
}

/** Throws a helpful error unless Maven is on the PATH. */
export function requireMaven(): void {
  const result = spawnSync('mvn', ['-v'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new Error(
      `Maven (\`mvn\`) is needed once to fetch the Kafka ${KAFKA_VERSION} jars from Maven Central, ` +
        `but it was not found on the PATH ` +
        `(${result.error ? errorMessage(result.error) : `exit ${result.status ?? '?'}`}). ` +
        `Install Maven 3.6+ (e.g. \`apt-get install maven\`, \`brew install maven\`), ` +
        `or point the tests at an existing Kafka with KAFKA_BROKERS=host:port.`,
    );
  }
}

/** KAFKA_PORT from the environment (default 9092), validated. */
export function kafkaPortFromEnv(): number {
  const raw = process.env.KAFKA_PORT ?? '9092';
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`KAFKA_PORT must be a TCP port number, got ${JSON.stringify(raw)}`);
  }
  return port;
}

/**
 * Folder holding the data dirs of `npm run kafka:start`: KAFKA_DATA_DIR if set, else `<repo>/.kafka`
 * (the jars always stay in `<repo>/.kafka`).
 */
export function kafkaDataHome(): string {
  const configured = process.env.KAFKA_DATA_DIR?.trim();
  return configured ? path.resolve(configured) : KAFKA_HOME;
}

/** Data dir used by `npm run kafka:start` for a port: `<repo>/.kafka/data-<port>`. */
export function localKafkaDataDir(port: number): string {
  return path.join(kafkaDataHome(), `data-${port}`);
}

/** Folder holding the Kafka jars for KAFKA_VERSION (may not exist yet). */
export function kafkaLibDir(): string {
  return path.join(KAFKA_HOME, `lib-${KAFKA_VERSION}`);
}

/**
 * Returns the folder with all jars of Kafka KAFKA_VERSION, fetching them with Maven first unless a
 * complete copy is present. The download goes to a temporary folder that is renamed into place
 * with a completion marker, so an interrupted download is redone and concurrent callers are safe.
 */
export async function ensureKafkaJars(
  options: { log?: (message: string) => void } = {},
): Promise<string> {
  const libDir = kafkaLibDir();
  if (existsSync(path.join(libDir, COMPLETE_MARKER))) return libDir;

  requireJava();
  requireMaven();
  options.log?.(`Fetching Kafka ${KAFKA_VERSION} jars from Maven Central into ${libDir} ...`);
  await fs.mkdir(KAFKA_HOME, { recursive: true });
  const tmpDir = `${libDir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const { code, output } = await run('mvn', [
      '-q',
      '-B',
      '-f',
      KAFKA_POM,
      'dependency:copy-dependencies',
      `-DoutputDirectory=${tmpDir}`,
      '-DincludeScope=runtime',
    ]);
    if (code !== 0) {
      throw new Error(
        `Fetching the Kafka ${KAFKA_VERSION} jars with Maven failed (exit ${code}). ` +
          `Is Maven Central reachable?\n${lastLines(output, 30)}`,
      );
    }
    if (!existsSync(path.join(tmpDir, `kafka_2.13-${KAFKA_VERSION}.jar`))) {
      throw new Error(`Maven finished but kafka_2.13-${KAFKA_VERSION}.jar is missing in ${tmpDir}`);
    }
    await fs.writeFile(
      path.join(tmpDir, COMPLETE_MARKER),
      `kafka ${KAFKA_VERSION} fetched ${new Date().toISOString()}\n`,
    );
    if (existsSync(path.join(libDir, COMPLETE_MARKER))) return libDir; // a concurrent fetch won
    await fs.rm(libDir, { recursive: true, force: true }); // leftover of an incomplete fetch
    try {
      await fs.rename(tmpDir, libDir);
    } catch (error) {
      if (!existsSync(path.join(libDir, COMPLETE_MARKER))) throw error;
    }
    return libDir;
  } finally {
    await fs.rm(tmpDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Ports and processes
// ---------------------------------------------------------------------------------------------

/** A TCP port that is free right now on `host` (there is an unavoidable small race). */
export function findFreePort(host = DEFAULT_HOST): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        if (port > 0) resolve(port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

/** Whether `port` can be bound on `host` right now. */
export function isPortFree(port: number, host = DEFAULT_HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => {
      resolve(false);
    });
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => {
        resolve(true);
      });
    });
  });
}

/** Whether a process with this pid exists and is not a zombie. */
/** SIGKILLs `pid` at once (continuing it first, should it be paused); gone already is fine. */
export function killNow(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGCONT');
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no procfs (macOS): trust kill(0)
  }
}

function commandLineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    const result = spawnSync('ps', ['-p', String(pid), '-o', 'command='], { encoding: 'utf8' });
    return result.status === 0 ? result.stdout.trim() : undefined;
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/**
 * Stops a process: SIGCONT (in case a test left it SIGSTOPped), SIGTERM, wait up to `timeoutMs`,
 * then SIGKILL.
 */
export async function stopProcess(pid: number, timeoutMs = 30_000): Promise<void> {
  if (!isProcessAlive(pid)) return;
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  };
  signal('SIGCONT');
  signal('SIGTERM');
  if (await waitForExit(pid, timeoutMs)) return;
  signal('SIGKILL');
  if (!(await waitForExit(pid, 5_000))) {
    throw new Error(`Kafka process ${pid} did not exit after SIGKILL`);
  }
}

// ---------------------------------------------------------------------------------------------
// Pid files
// ---------------------------------------------------------------------------------------------

export interface RunningKafka {
  pid: number;
  /** Bootstrap address, e.g. `127.0.0.1:9092`. */
  brokers: string;
  dataDir: string;
}

function readAdvertisedBrokers(dataDir: string): string | undefined {
  try {
    const properties = readFileSync(path.join(dataDir, PROPERTIES_FILE), 'utf8');
    const line = /^advertised\.listeners=(.*)$/m.exec(properties)?.[1];
    return line
      ?.split(',')
      .map((listener) => listener.trim().replace(/^[A-Z_]+:\/\//, ''))
      .join(',');
  } catch {
    return undefined;
  }
}

/**
 * The Kafka started by startLocalKafka() on `dataDir`, if its pid file names a live Kafka process.
 * A stale pid file is removed.
 */
export async function findRunningLocalKafka(dataDir: string): Promise<RunningKafka | undefined> {
  const pidFile = path.join(dataDir, PID_FILE);
  let pid: number;
  try {
    pid = Number.parseInt((await fs.readFile(pidFile, 'utf8')).trim(), 10);
  } catch {
    return undefined;
  }
  const commandLine = Number.isInteger(pid) && isProcessAlive(pid) ? commandLineOf(pid) : undefined;
  const isOurKafka =
    commandLine !== undefined &&
    commandLine.includes('kafka.Kafka') &&
    commandLine.includes(path.join(dataDir, PROPERTIES_FILE));
  const brokers = readAdvertisedBrokers(dataDir);
  if (!isOurKafka || !brokers) {
    await fs.rm(pidFile, { force: true });
    return undefined;
  }
  return { pid, brokers, dataDir };
}

/**
 * Stops the Kafka whose pid file is in `dataDir`. Returns what was stopped, or undefined if no
 * Kafka was running there.
 */
export async function stopLocalKafka(
  dataDir: string,
  timeoutMs = 30_000,
): Promise<RunningKafka | undefined> {
  const running = await findRunningLocalKafka(dataDir);
  if (!running) return undefined;
  await stopProcess(running.pid, timeoutMs);
  await fs.rm(path.join(dataDir, PID_FILE), { force: true });
  return running;
}

// ---------------------------------------------------------------------------------------------
// Readiness
// ---------------------------------------------------------------------------------------------

/** The TLS and SASL settings of a KafkaJS client (empty for a PLAINTEXT listener). */
export type KafkaClientSecurity = Pick<KafkaConfig, 'ssl' | 'sasl'>;

async function probeOnce(kafka: Kafka, brokerCount: number): Promise<void> {
  const admin = kafka.admin({ retry: { retries: 0 } });
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner, // explicit: no KafkaJS partitioner warning
    allowAutoTopicCreation: false,
    idempotent: true, // InitProducerId must work too
    maxInFlightRequests: 1,
    retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 }, // idempotence needs retries
  });
  try {
    await admin.connect();
    if (brokerCount > 1) {
      const { brokers } = await admin.describeCluster();
      if (brokers.length < brokerCount) {
        throw new Error(`${brokers.length} of ${brokerCount} brokers registered`);
      }
    }
    await admin.createTopics({
      topics: [
        { topic: READY_TOPIC, numPartitions: 1, replicationFactor: Math.min(brokerCount, 3) },
      ],
      waitForLeaders: true,
    });
    await producer.connect();
    await producer.send({ topic: READY_TOPIC, acks: -1, messages: [{ value: 'ready' }] });
    // Group coordinator lookup: creates and loads __consumer_offsets, so the first consumer group
    // of a test does not start with "coordinator not available" retries.
    await admin.describeGroups([READY_TOPIC]);
  } finally {
    await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
  }
}

export interface WaitForKafkaOptions {
  timeoutMs?: number;
  /** Called between attempts; return an Error to give up at once (e.g. the process died). */
  check?: () => Error | undefined;
  signal?: AbortSignal;
  /** TLS / SASL of the listener (e.g. a SASL_SSL one); default PLAINTEXT. */
  security?: KafkaClientSecurity;
  /** Also wait until this many brokers are registered (a cluster); default 1. */
  brokerCount?: number;
}

/**
 * Resolves once the broker accepts produce requests: creates READY_TOPIC and produces one record
 * with acks=-1 (KafkaJS logging off), retrying until ok or `timeoutMs` (default 90 s). With
 * `brokerCount`, first waits until that many brokers are registered, and READY_TOPIC gets
 * min(brokerCount, 3) replicas.
 */
export async function waitForKafkaReady(
  brokers: string | string[],
  options: WaitForKafkaOptions = {},
): Promise<void> {
  const list = Array.isArray(brokers) ? brokers : brokers.split(',').map((b) => b.trim());
  const timeoutMs = options.timeoutMs ?? 90_000;
  const deadline = Date.now() + timeoutMs;
  const kafka = new Kafka({
    clientId: 'bridge-ready-probe',
    brokers: list,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    requestTimeout: 10_000,
    retry: { retries: 0 },
    ...options.security,
  });
  const brokerCount = options.brokerCount ?? 1;
  let lastError: unknown;
  for (;;) {
    options.signal?.throwIfAborted();
    const fatal = options.check?.();
    if (fatal) throw fatal;
    try {
      await probeOnce(kafka, brokerCount);
      return;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await sleep(250);
  }
  throw new Error(
    `Kafka at ${list.join(',')} did not accept a produce within ${Math.round(timeoutMs / 1000)} s ` +
      `(last error: ${errorMessage(lastError)})`,
  );
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------

export interface SpawnKafkaOptions {
  /** `<libDir>/*` */
  classpath: string;
  propertiesFile: string;
  cwd: string;
  /** Kafka's stdout/stderr are appended to it (after a line with `banner`). */
  logFile: string;
  /** Own process group (survives the caller's Ctrl-C), or the caller's. */
  detached: boolean;
  /** Java max heap in MB; default 512. */
  heapMb?: number | undefined;
  banner: string;
}

/**
 * Spawns `java kafka.Kafka <propertiesFile>` with the JVM settings of every local Kafka (heap,
 * G1, slf4j-simple at KAFKA_LOG_LEVEL, default warn). The child is unref()ed.
 */
export async function spawnKafkaJvm(options: SpawnKafkaOptions): Promise<ChildProcess> {
  await fs.mkdir(path.dirname(options.logFile), { recursive: true });
  const logHandle = await fs.open(options.logFile, 'a');
  try {
    await logHandle.write(`\n=== ${new Date().toISOString()} ${options.banner} ===\n`);
    const child = spawn(
      'java',
      [
        `-Xmx${options.heapMb ?? 512}m`,
        '-XX:+UseG1GC',
        '-Djava.awt.headless=true',
        `-Dorg.slf4j.simpleLogger.defaultLogLevel=${process.env.KAFKA_LOG_LEVEL ?? 'warn'}`,
        '-Dorg.slf4j.simpleLogger.showDateTime=true',
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ",
        '-cp',
        options.classpath,
        'kafka.Kafka',
        options.propertiesFile,
      ],
      {
        cwd: options.cwd,
        detached: options.detached,
        stdio: ['ignore', logHandle.fd, logHandle.fd],
      },
    );
    // A failed spawn (no pid) emits 'error' before the caller can listen: not a crash.
    child.on('error', () => undefined);
    // Let the caller (e.g. `npm run kafka:start`) exit while Kafka keeps running.
    child.unref();
    return child;
  } finally {
    await logHandle.close();
  }
}

export interface LocalKafkaOptions {
  /** Client port (PLAINTEXT listener). */
  port: number;
  /** KRaft controller port; a free one is picked if omitted. */
  controllerPort?: number;
  /** Interface to listen on and advertise; default 127.0.0.1. */
  host?: string;
  /** Holds server.properties, the pid file, the log (by default) and the Kafka data in logs/. */
  dataDir: string;
  /** Kafka's stdout/stderr; default `<dataDir>/kafka.log`. */
  logFile?: string;
  /**
   * true (default): own process group, survives the caller (for `npm run kafka:start`).
   * false: same process group (Ctrl-C reaches it too) and SIGKILLed when the caller exits.
   */
  detached?: boolean;
  /** How long to wait for the broker to accept produce requests; default 90 s. */
  readyTimeoutMs?: number;
  /** Java max heap in MB; default 512. */
  heapMb?: number;
  /** Progress messages (e.g. the one-off jar download). */
  log?: (message: string) => void;
  /** Aborting kills the starting broker. */
  signal?: AbortSignal;
}

export interface LocalKafka {
  /** Bootstrap address, e.g. `127.0.0.1:9092`. */
  brokers: string;
  pid: number;
  version: string;
  dataDir: string;
  logFile: string;
  /** SIGTERM, wait up to 30 s for exit, then SIGKILL; removes the pid file. */
  stop(): Promise<void>;
}

/**
 * Broker settings of a single-node Kafka for development and tests: internal topics with one
 * replica (or consumer groups and idempotent producers never become ready), and groups that
 * form at once.
 */
export const SINGLE_NODE_SETTINGS = [
  'num.partitions=1',
  'offsets.topic.replication.factor=1',
  'transaction.state.log.replication.factor=1',
  'transaction.state.log.min.isr=1',
  'share.coordinator.state.topic.replication.factor=1',
  'share.coordinator.state.topic.min.isr=1',
  'group.initial.rebalance.delay.ms=0',
];

function serverProperties(host: string, port: number, controllerPort: number, dataDir: string) {
  return [
    `# Written by scripts/kafka/local-kafka.ts (Kafka ${KAFKA_VERSION}); rewritten on every start.`,
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@${host}:${controllerPort}`,
    `listeners=PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://${host}:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${path.join(dataDir, 'logs')}`,
    ...SINGLE_NODE_SETTINGS,
    '',
  ].join('\n');
}

/**
 * Starts a single-node KRaft Kafka from the Maven Central jars: formats `dataDir` if needed,
 * spawns the JVM, writes `<dataDir>/kafka.pid` and resolves once the broker accepts produce
 * requests. Fails fast (with the log tail) if the JVM exits early or is not ready in time.
 */
export async function startLocalKafka(options: LocalKafkaOptions): Promise<LocalKafka> {
  const host = options.host ?? DEFAULT_HOST;
  const dataDir = path.resolve(options.dataDir);
  const logFile = path.resolve(options.logFile ?? path.join(dataDir, 'kafka.log'));
  const propertiesFile = path.join(dataDir, PROPERTIES_FILE);
  const pidFile = path.join(dataDir, PID_FILE);
  const detached = options.detached ?? true;
  const { port } = options;

  const libDir = await ensureKafkaJars({ log: options.log });
  requireJava();
  const classpath = path.join(libDir, '*');

  await fs.mkdir(dataDir, { recursive: true });
  const running = await findRunningLocalKafka(dataDir);
  if (running) {
    throw new Error(`A Kafka (pid ${running.pid}) is already running at ${running.brokers}`);
  }
  if (!(await isPortFree(port, host))) {
    throw new Error(`Cannot start Kafka: port ${port} on ${host} is already in use`);
  }
  let controllerPort = options.controllerPort;
  if (controllerPort === undefined) {
    do controllerPort = await findFreePort(host);
    while (controllerPort === port);
  } else if (!(await isPortFree(controllerPort, host))) {
    throw new Error(`Cannot start Kafka: controller port ${controllerPort} is already in use`);
  }

  await fs.writeFile(propertiesFile, serverProperties(host, port, controllerPort, dataDir));

  await formatKafkaStorage(classpath, propertiesFile, dataDir);

  const child = await spawnKafkaJvm({
    classpath,
    propertiesFile,
    cwd: dataDir,
    logFile,
    detached,
    heapMb: options.heapMb,
    banner: `starting Kafka ${KAFKA_VERSION} on ${host}:${port}`,
  });

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  child.once('error', (error) => {
    spawnError = error;
  });

  const pid = child.pid;
  if (pid === undefined) {
    await sleep(0);
    throw new Error(`Could not start java: ${spawnError?.message ?? 'no pid'}`);
  }
  await fs.writeFile(pidFile, `${pid}\n`);

  const killOnExit = (): void => {
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  if (!detached) process.once('exit', killOnExit);

  const stop = async (): Promise<void> => {
    await stopProcess(pid);
    process.removeListener('exit', killOnExit);
    await fs.rm(pidFile, { force: true });
  };

  const brokers = `${host}:${port}`;
  try {
    await waitForKafkaReady(brokers, {
      timeoutMs: options.readyTimeoutMs ?? 90_000,
      signal: options.signal,
      check: () => {
        if (spawnError) return new Error(`Could not run java: ${spawnError.message}`);
        if (!exited) return undefined;
        const how = exited.signal ? `signal ${exited.signal}` : `code ${exited.code ?? '?'}`;
        return new Error(`Kafka exited during startup (${how})`);
      },
    });
  } catch (error) {
    await stop().catch(() => undefined);
    throw new Error(
      `${errorMessage(error)}\n--- last lines of ${logFile} ---\n${await tailFile(logFile)}`,
    );
  }

  return { brokers, pid, version: KAFKA_VERSION, dataDir, logFile, stop };
}

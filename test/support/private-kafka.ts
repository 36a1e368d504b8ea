/**
 * A PRIVATE single-node Kafka for fault-injection tests that stop, restart or cut off the broker
 * (the shared test Kafka from kafka-global-setup.ts is used by test files running in parallel
 * and must never be stopped). Same jars and JVM settings as scripts/kafka/local-kafka.ts, with
 * two client listeners:
 *
 *   DIRECT   advertised as itself: for the test's own clients (topics, reading records), and for
 *            a bridge that talks to Kafka directly.
 *   PROXIED  advertised at `proxyPort`: a bridge bootstrapped through a TCP proxy on that port
 *            (test/support/tcp-proxy.ts) is told by Kafka's metadata to connect to the proxy
 *            again, so every byte between it and Kafka passes the proxy.
 *
 * stop() really stops the process (SIGTERM, then SIGKILL); start() runs it again on the same
 * ports and data, so the topics and records survive. destroy() stops it and removes its data.
 * (A private multi-node cluster, optionally SASL_SSL: private-cluster.ts.)
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import {
  ensureKafkaJars,
  formatKafkaStorage,
  findFreePort,
  KAFKA_VERSION,
  requireJava,
  SINGLE_NODE_SETTINGS,
  spawnKafkaJvm,
  stopProcess,
  tailFile,
  waitForKafkaReady,
  killNow,
} from '../../scripts/kafka/local-kafka.js';

const HOST = '127.0.0.1';

export interface PrivateKafkaOptions {
  /** Port Kafka advertises for its PROXIED listener (where a proxy will listen). */
  proxyPort?: number;
  /** How long a start may take before it fails; default 90 s. */
  readyTimeoutMs?: number;
}

export class PrivateKafka {
  readonly dataDir: string;
  readonly logFile: string;
  /** Port of the DIRECT listener; `brokers` is `127.0.0.1:<directPort>`. */
  readonly directPort: number;
  /** Port of the PROXIED listener (the real socket a proxy forwards to). */
  readonly proxiedPort: number;
  /** Port advertised for the PROXIED listener. */
  readonly proxyPort: number;
  readonly #controllerPort: number;
  readonly #readyTimeoutMs: number;
  #child: ChildProcess | undefined;
  readonly #killOnExit = (): void => {
    killNow(this.#child?.pid);
  };

  private constructor(fields: {
    dataDir: string;
    directPort: number;
    proxiedPort: number;
    proxyPort: number;
    controllerPort: number;
    readyTimeoutMs: number;
  }) {
    this.dataDir = fields.dataDir;
    this.logFile = path.join(fields.dataDir, 'kafka.log');
    this.directPort = fields.directPort;
    this.proxiedPort = fields.proxiedPort;
    this.proxyPort = fields.proxyPort;
    this.#controllerPort = fields.controllerPort;
    this.#readyTimeoutMs = fields.readyTimeoutMs;
  }

  /** Creates the data dir, formats it and starts the broker (resolves once it takes produces). */
  static async create(options: PrivateKafkaOptions = {}): Promise<PrivateKafka> {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'bridge-private-kafka-'));
    const ports = new Set<number>();
    const freePort = async (): Promise<number> => {
      for (;;) {
        const port = await findFreePort(HOST);
        if (!ports.has(port)) {
          ports.add(port);
          return port;
        }
      }
    };
    if (options.proxyPort !== undefined) ports.add(options.proxyPort);
    const kafka = new PrivateKafka({
      dataDir,
      directPort: await freePort(),
      proxiedPort: await freePort(),
      proxyPort: options.proxyPort ?? (await freePort()),
      controllerPort: await freePort(),
      readyTimeoutMs: options.readyTimeoutMs ?? 90_000,
    });
    try {
      await kafka.#format();
      await kafka.start();
    } catch (error) {
      await kafka.destroy();
      throw error;
    }
    return kafka;
  }

  /** Bootstrap servers of the DIRECT listener. */
  get brokers(): string {
    return `${HOST}:${this.directPort}`;
  }

  /** Where a proxy in front of the PROXIED listener forwards to. */
  get proxiedTarget(): { host: string; port: number } {
    return { host: HOST, port: this.proxiedPort };
  }

  get pid(): number | undefined {
    return this.#child?.exitCode === null ? this.#child.pid : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  /** A KafkaJS client on the DIRECT listener, logging off. */
  client(): Kafka {
    return new Kafka({
      clientId: `private-${randomBytes(4).toString('hex')}`,
      brokers: [this.brokers],
      logLevel: logLevel.NOTHING,
    });
  }

  /** Starts the JVM on the same ports and data; resolves once the broker takes produces. */
  async start(): Promise<void> {
    if (this.running) throw new Error('private Kafka already running');
    const classpath = path.join(await ensureKafkaJars(), '*');
    requireJava();
    const child = await spawnKafkaJvm({
      classpath,
      propertiesFile: this.#propertiesFile,
      cwd: this.dataDir,
      logFile: this.logFile,
      detached: false,
      banner: 'starting private Kafka',
    });
    this.#child = child;
    let exited = false;
    child.once('exit', () => (exited = true));
    child.once('error', () => (exited = true));
    if (child.pid === undefined) throw new Error('could not start java for the private Kafka');
    process.once('exit', this.#killOnExit);
    try {
      await waitForKafkaReady(this.brokers, {
        timeoutMs: this.#readyTimeoutMs,
        check: () => (exited ? new Error('private Kafka exited during start-up') : undefined),
      });
    } catch (error) {
      await this.stop();
      throw new Error(
        `${(error as Error).message}\n--- ${this.logFile} ---\n${await tailFile(this.logFile)}`,
      );
    }
  }

  /** Stops the broker process (SIGTERM: controlled shutdown; SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 30_000): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    process.removeListener('exit', this.#killOnExit);
    if (child?.pid === undefined) return;
    await stopProcess(child.pid, timeoutMs);
  }

  /** Stops the broker (at once) and removes its data. */
  async destroy(): Promise<void> {
    await this.stop(5_000);
    await rm(this.dataDir, { recursive: true, force: true });
  }

  /** The broker log's last lines, for failure messages. */
  logTail(lines = 30): Promise<string> {
    return tailFile(this.logFile, lines);
  }

  get #propertiesFile(): string {
    return path.join(this.dataDir, 'server.properties');
  }

  async #format(): Promise<void> {
    const controller = `${HOST}:${this.#controllerPort}`;
    await writeFile(
      this.#propertiesFile,
      [
        `# private fault-injection Kafka ${KAFKA_VERSION} (test/support/private-kafka.ts)`,
        'process.roles=broker,controller',
        'node.id=1',
        `controller.quorum.voters=1@${controller}`,
        `listeners=DIRECT://${HOST}:${this.directPort},PROXIED://${HOST}:${this.proxiedPort},CONTROLLER://${controller}`,
        `advertised.listeners=DIRECT://${HOST}:${this.directPort},PROXIED://${HOST}:${this.proxyPort}`,
        'controller.listener.names=CONTROLLER',
        'inter.broker.listener.name=DIRECT',
        'listener.security.protocol.map=CONTROLLER:PLAINTEXT,DIRECT:PLAINTEXT,PROXIED:PLAINTEXT',
        `log.dirs=${path.join(this.dataDir, 'logs')}`,
        ...SINGLE_NODE_SETTINGS,
        'offsets.topic.num.partitions=1',
        '',
      ].join('\n'),
    );
    await formatKafkaStorage(
      path.join(await ensureKafkaJars(), '*'),
      this.#propertiesFile,
      this.dataDir,
    );
  }
}

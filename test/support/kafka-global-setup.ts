/**
 * Vitest globalSetup of the `integration` project: decides which Kafka the tests use and provides
 * `kafkaBrokers` / `kafkaControl` (see kafka-context.ts) to them.
 *
 *   1. KAFKA_BROKERS=host:port[,...]  → that Kafka (kind `external`; cannot be paused).
 *   2. a Docker engine answers         → apache/kafka:<version> container via testcontainers.
 *   3. otherwise                       → a local KRaft JVM from the Maven Central jars
 *                                        (scripts/kafka/local-kafka.ts; needs Java 17+ and Maven).
 *
 * TEST_KAFKA=local or TEST_KAFKA=container forces 3 or 2 (when KAFKA_BROKERS is unset).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import {
  findFreePort,
  KAFKA_VERSION,
  startLocalKafka,
  waitForKafkaReady,
} from '../../scripts/kafka/local-kafka.js';
import { pauseTokenDir, type KafkaControl } from './kafka-context.js';

type Teardown = () => Promise<void>;

interface TestKafka {
  brokers: string;
  control: KafkaControl;
  description: string;
  teardown: Teardown;
}

function say(message: string): void {
  console.log(`[kafka] ${message}`);
}

async function dockerAvailable(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

const CONTAINER_KAFKA_PORT = 9092;
const STARTER_SCRIPT = '/tmp/bridge_kafka_start.sh';
const STARTER_READY = '/tmp/bridge_kafka_start.ready';
const WAITING_MESSAGE = 'bridge: waiting for starter script';

/**
 * apache/kafka in KRaft mode. The installed @testcontainers/kafka (11.8) KafkaContainer only
 * supports confluentinc/cp-kafka images (it runs /etc/confluent/docker/run and would treat the
 * apache/kafka 4.x tag as a ZooKeeper-era version), so this drives a GenericContainer the way
 * Testcontainers for Java drives apache/kafka: the container waits for a starter script that
 * exports the advertised listener with the mapped host port, then runs /etc/kafka/docker/run.
 */
async function startContainerKafka(): Promise<TestKafka> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const image = `apache/kafka:${KAFKA_VERSION}`;
  const container = await new GenericContainer(image)
    .withExposedPorts(CONTAINER_KAFKA_PORT)
    .withEnvironment({
      CLUSTER_ID: randomBytes(16).toString('base64url'),
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP:
        'PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'BROKER',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9094',
      KAFKA_NUM_PARTITIONS: '1',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
    })
    .withCommand([
      'sh',
      '-c',
      `echo '${WAITING_MESSAGE}'; while [ ! -f ${STARTER_READY} ]; do sleep 0.1; done; ` +
        `exec bash ${STARTER_SCRIPT}`,
    ])
    .withWaitStrategy(Wait.forLogMessage(WAITING_MESSAGE))
    .withStartupTimeout(180_000)
    .start();
  try {
    const brokers = `${container.getHost()}:${container.getMappedPort(CONTAINER_KAFKA_PORT)}`;
    const script = [
      '#!/bin/bash',
      `export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://${brokers},BROKER://localhost:9093`,
      'exec /etc/kafka/docker/run',
      '',
    ].join('\n');
    await container.copyContentToContainer([
      { content: script, target: STARTER_SCRIPT, mode: 0o755 },
    ]);
    // Separate copy, so the script is complete when the wait loop sees the flag.
    await container.copyContentToContainer([{ content: '', target: STARTER_READY }]);
    await waitForKafkaReady(brokers, { timeoutMs: 120_000 });
    const id = container.getId();
    return {
      brokers,
      control: { kind: 'container', id },
      description: `container ${image} (${id.slice(0, 12)})`,
      teardown: async () => {
        await container.stop();
      },
    };
  } catch (error) {
    await container.stop().catch(() => undefined);
    throw error;
  }
}

async function startLocal(): Promise<TestKafka> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'bridge-test-kafka-'));
  const kafka = await startLocalKafka({
    port: await findFreePort(),
    dataDir,
    detached: false, // dies with the test run (Ctrl-C, crash) instead of lingering
    log: say,
  });
  return {
    brokers: kafka.brokers,
    control: { kind: 'local', pid: kafka.pid },
    description: `local Kafka ${KAFKA_VERSION} JVM (pid ${kafka.pid}, data ${dataDir})`,
    teardown: async () => {
      try {
        await kafka.stop();
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}

async function chooseKafka(): Promise<TestKafka> {
  const external = process.env.KAFKA_BROKERS?.trim();
  if (external) {
    return {
      brokers: external,
      control: { kind: 'external' },
      description: 'external Kafka from KAFKA_BROKERS',
      teardown: () => Promise.resolve(),
    };
  }
  const forced = process.env.TEST_KAFKA?.trim();
  if (forced && forced !== 'local' && forced !== 'container') {
    throw new Error(`TEST_KAFKA must be "local" or "container", got ${JSON.stringify(forced)}`);
  }
  if (forced === 'container' || (forced !== 'local' && (await dockerAvailable()))) {
    return startContainerKafka();
  }
  return startLocal();
}

export default async function setup(project: TestProject): Promise<Teardown> {
  const started = Date.now();
  const kafka = await chooseKafka();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const timing = kafka.control.kind === 'external' ? '' : ` (ready in ${seconds} s)`;
  say(`integration tests use ${kafka.description} at ${kafka.brokers}${timing}`);
  project.provide('kafkaBrokers', kafka.brokers);
  project.provide('kafkaControl', kafka.control);
  return async () => {
    const pauses = pauseTokenDir(kafka.control);
    if (pauses !== undefined) await rm(pauses, { recursive: true, force: true });
    await kafka.teardown();
  };
}

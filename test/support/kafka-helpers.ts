/**
 * Kafka helpers for integration tests, on the Kafka chosen by kafka-global-setup.ts.
 * Everything they connect is disconnected again (in the helper, or when the test finishes).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  Kafka,
  logLevel,
  Partitioners,
  type IHeaders,
  type ITopicConfig,
  type KafkaConfig,
  type Producer,
  type ProducerConfig,
} from 'kafkajs';
import { waitForLeaders } from '../../src/kafka/topic-creation.js';
import { inject, onTestFinished } from 'vitest';
import { pauseTokenDir, type KafkaControl } from './kafka-context.js';

const execFileAsync = promisify(execFile);

/** Runs `cleanup` when the current test finishes; a no-op outside a test (e.g. in beforeAll). */
function afterThisTest(cleanup: () => Promise<unknown>): void {
  try {
    onTestFinished(async () => {
      await cleanup();
    });
  } catch {
    // not inside a test: the caller owns the cleanup
  }
}

/** A short random suffix for unique names. */
export function uniqueId(): string {
  return randomBytes(5).toString('hex');
}

/** The test Kafka's bootstrap servers. */
export function kafkaBrokers(): string[] {
  return inject('kafkaBrokers')
    .split(',')
    .map((broker) => broker.trim())
    .filter((broker) => broker.length > 0);
}

/** How the test Kafka runs (local JVM, container, external). */
export function kafkaControl(): KafkaControl {
  return inject('kafkaControl');
}

/** A KafkaJS client on the test Kafka with logging off (override anything via `config`). */
export function kafkaClient(config: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: `test-${uniqueId()}`,
    brokers: kafkaBrokers(),
    logLevel: logLevel.NOTHING,
    ...config,
  });
}

/**
 * Creates a topic named `<name>-<random>` (default prefix `t`), so every call gets a fresh topic
 * even on a shared Kafka; `exact: true` uses `name` as is. Waits for partition leaders.
 */
export async function createTopic(
  name = 't',
  partitions = 1,
  options: { exact?: boolean; configEntries?: ITopicConfig['configEntries'] } = {},
): Promise<string> {
  const topic = options.exact ? name : `${name}-${uniqueId()}`;
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const created = await admin.createTopics({
      topics: [
        {
          topic,
          numPartitions: partitions,
          replicationFactor: 1,
          configEntries: options.configEntries,
        },
      ],
      // KafkaJS's own wait gives up when a broker answers "does not host this topic-partition"
      // for a moment after creation: the bridge's wait polls until every partition has a leader
      waitForLeaders: false,
    });
    if (!created && !options.exact) throw new Error(`topic ${topic} already exists`);
    await waitForLeaders(admin, [topic]);
  } finally {
    await admin.disconnect();
  }
  return topic;
}

/**
 * A connected KafkaJS producer (explicit default partitioner, so no partitioner warning),
 * disconnected when the test finishes.
 */
export async function connectedProducer(config: ProducerConfig = {}): Promise<Producer> {
  const producer = kafkaClient().producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    ...config,
  });
  await producer.connect();
  afterThisTest(() => producer.disconnect());
  return producer;
}

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: string;
  /** Milliseconds since the epoch, as KafkaJS reports it (a string). */
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  /** Header values decoded as UTF-8 (an array for a repeated header). */
  headers: Record<string, string | string[]>;
  /** Header values as KafkaJS returned them. */
  rawHeaders: IHeaders;
}

function headerStrings(headers: IHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map((item) => item.toString()) : value.toString();
  }
  return out;
}

export interface ReadRecordsOptions {
  /** Give up (reject, saying how many arrived) after this long; default 15 s. */
  timeoutMs?: number;
  /** Only records for which this returns true are collected and counted. */
  match?: (record: ReadRecord) => boolean;
}

/**
 * Consumes `topic` from the beginning with a fresh consumer group until `count` (matching)
 * records arrived, then disconnects; records beyond `count` are ignored. Order is per partition
 * (arrival order across partitions).
 */
export async function readRecords(
  topic: string,
  count: number,
  { timeoutMs = 15_000, match }: ReadRecordsOptions = {},
): Promise<ReadRecord[]> {
  const records: ReadRecord[] = [];
  if (count <= 0) return records;
  const consumer = kafkaClient().consumer({
    groupId: `read-${uniqueId()}`,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 250,
  });
  let timer: NodeJS.Timeout | undefined;
  let seen = 0;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => {
        reject(
          new Error(
            `readRecords(${topic}): ${records.length} of ${count} ${match ? 'matching ' : ''}` +
              `records within ${timeoutMs} ms (${seen} read)`,
          ),
        );
      }, timeoutMs);
      consumer.on(consumer.events.CRASH, (event) => {
        if (!event.payload.restart) reject(event.payload.error);
      });
      consumer
        .run({
          autoCommit: false,
          eachMessage: ({ topic: recordTopic, partition, message }) => {
            seen += 1;
            if (records.length < count) {
              const record: ReadRecord = {
                topic: recordTopic,
                partition,
                offset: message.offset,
                timestamp: message.timestamp,
                key: message.key,
                value: message.value,
                headers: headerStrings(message.headers ?? {}),
                rawHeaders: message.headers ?? {},
              };
              if (!match || match(record)) records.push(record);
              if (records.length === count) resolve();
            }
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
    return records;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
}

/** High watermark (next offset) of each partition of `topic`, indexed by partition. */
export async function highWatermarks(topic: string): Promise<number[]> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const result: number[] = [];
    for (const { partition, high } of offsets) result[partition] = Number(high);
    return result;
  } finally {
    await admin.disconnect();
  }
}

/** Whether pauseKafka()/resumeKafka() work here (not for an external KAFKA_BROKERS Kafka). */
export function canPauseKafka(): boolean {
  return kafkaControl().kind !== 'external';
}

async function signalKafka(control: KafkaControl, action: 'pause' | 'resume'): Promise<void> {
  switch (control.kind) {
    case 'local':
      process.kill(control.pid, action === 'pause' ? 'SIGSTOP' : 'SIGCONT');
      return;
    case 'container':
      try {
        await execFileAsync('docker', [action === 'pause' ? 'pause' : 'unpause', control.id]);
      } catch (error) {
        const harmless = action === 'pause' ? /is already paused/i : /is not paused/i;
        if (!harmless.test(String(error))) throw error;
      }
      return;
    case 'external':
      throw new Error(
        `cannot ${action} an external Kafka (KAFKA_BROKERS is set); guard the test with canPauseKafka()`,
      );
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `action` while holding the pause lock of `dir` (a directory made atomically), so that a
 * resume's "nobody else holds a pause" check and its SIGCONT cannot interleave with another
 * file's pause (which then found Kafka resumed under it). A lock left by a dead worker is broken
 * after 10 s.
 */
async function withPauseLock<T>(dir: string, action: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, '.lock');
  await mkdir(dir, { recursive: true });
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch {
      const since = await stat(lock).then(
        (info) => Date.now() - info.mtimeMs,
        () => 0,
      );
      if (since > 10_000) await rm(lock, { recursive: true, force: true });
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  try {
    return await action();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** This worker's pause token, while it holds a pause. */
let pauseToken: string | undefined;

/**
 * Freezes the whole Kafka (local JVM: SIGSTOP; container: docker pause): connections stay open
 * but nothing is answered. Throws for an external Kafka (see canPauseKafka()). Resumed
 * automatically when the test finishes.
 *
 * Kafka is shared by the test files running in parallel: they all see it frozen, and it is only
 * resumed once every test that paused it called resumeKafka() (pause tokens in a shared folder).
 */
export async function pauseKafka(): Promise<void> {
  const control = kafkaControl();
  const dir = pauseTokenDir(control);
  if (dir === undefined) return signalKafka(control, 'pause'); // throws for external
  await withPauseLock(dir, async () => {
    if (pauseToken === undefined) {
      pauseToken = path.join(dir, `${process.pid}-${uniqueId()}`);
      await writeFile(pauseToken, '');
    }
    await signalKafka(control, 'pause');
  });
  afterThisTest(resumeKafka);
}

/**
 * Undoes this test's pauseKafka(); harmless when not paused. If another test (in another file)
 * still holds a pause, Kafka stays frozen until that one resumes too.
 */
export async function resumeKafka(): Promise<void> {
  const control = kafkaControl();
  const dir = pauseTokenDir(control);
  if (dir === undefined) return signalKafka(control, 'resume'); // throws for external
  await withPauseLock(dir, async () => {
    if (pauseToken !== undefined) {
      await rm(pauseToken, { force: true });
      pauseToken = undefined;
    }
    const holders = (await readdir(dir).catch(() => [])).filter((name) => name !== '.lock');
    for (const token of holders) {
      const pid = Number.parseInt(token, 10);
      if (Number.isInteger(pid) && !isAlive(pid)) await rm(path.join(dir, token), { force: true });
      else return; // still paused for another test
    }
    await signalKafka(control, 'resume');
  });
}

/**
 * Kafka's own command-line tools (console producer and consumer, kafka-configs, ...) for tests
 * that check the bridge against the reference implementation or act as an operator would. The
 * tools are in the kafka-tools jar, which the broker's jars (.kafka/lib-<version>) do not
 * include: it is fetched once from Maven Central into .kafka/tools-<version>.
 */
import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  ensureKafkaJars,
  KAFKA_HOME,
  KAFKA_POM,
  KAFKA_VERSION,
} from '../../scripts/kafka/local-kafka.js';
import { uniqueId } from './kafka-helpers.js';

const execFileAsync = promisify(execFile);

/** Java options for a short-lived tool: quick start over peak speed. */
const JVM_OPTIONS = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-Xshare:auto', '-Xmx256m'];

/** The classpath of Kafka's console tools: the broker's jars plus the kafka-tools jar. */
export async function kafkaToolsClasspath(): Promise<string> {
  const libDir = await ensureKafkaJars();
  const toolsDir = path.join(KAFKA_HOME, `tools-${KAFKA_VERSION}`);
  if (!existsSync(path.join(toolsDir, `kafka-tools-${KAFKA_VERSION}.jar`))) {
    const tmpDir = `${toolsDir}.tmp-${process.pid}-${uniqueId()}`;
    await execFileAsync('mvn', [
      '-q',
      '-B',
      '-f',
      KAFKA_POM,
      'dependency:copy',
      `-Dartifact=org.apache.kafka:kafka-tools:${KAFKA_VERSION}`,
      `-DoutputDirectory=${tmpDir}`,
    ]);
    await rename(tmpDir, toolsDir).catch(async (error: unknown) => {
      await rm(tmpDir, { recursive: true, force: true });
      if (!existsSync(toolsDir)) throw error; // else: another run put it there first
    });
  }
  return [path.join(libDir, '*'), path.join(toolsDir, '*')].join(path.delimiter);
}

/** Runs a Kafka tool's main class; resolves with its output once it exits 0. */
export function runTool(
  classpath: string,
  mainClass: string,
  args: string[],
  stdin = '',
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('java', [...JVM_OPTIONS, '-cp', classpath, mainClass, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else
        reject(
          new Error(
            `${mainClass} exited with ${code ?? signal}\n${stderr.trim().split('\n').slice(-30).join('\n')}`,
          ),
        );
    });
    child.stdin.end(stdin);
  });
}

/**
 * A local Apicurio Registry (a Confluent-compatible schema registry) run straight from its
 * distribution on Maven Central — no Docker needed, only Java 17+ and Maven. In-memory storage:
 * everything registered is gone when it stops.
 *
 * Used by `npm run registry:start` / `registry:stop` and by the schema registry tests.
 * The version lives in ONE place: the `<apicurio.version>` property of scripts/registry/pom.xml.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file is scripts/registry/local-registry.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REGISTRY_POM = path.join(REPO_ROOT, 'scripts', 'registry', 'pom.xml');
/** Git-ignored home of fetched jars and local data (shared with the local Kafka). */
export const LOCAL_HOME = path.join(REPO_ROOT, '.kafka');

function readVersion(): string {
  const pom = readFileSync(REGISTRY_POM, 'utf8');
  const match = /<apicurio\.version>\s*([^<\s]+)\s*<\/apicurio\.version>/.exec(pom);
  if (!match?.[1]) throw new Error(`No <apicurio.version> property in ${REGISTRY_POM}`);
  return match[1];
}

/** The pinned Apicurio Registry version (scripts/registry/pom.xml). */
export const APICURIO_VERSION: string = readVersion();
/** Where the distribution is unpacked: `.kafka/apicurio-registry-<version>/`. */
export const REGISTRY_DIST = path.join(LOCAL_HOME, `apicurio-registry-${APICURIO_VERSION}`);
/** The Confluent-compatible API (v7 of Confluent's REST API) under the registry's root. */
export const CCOMPAT_PATH = '/apis/ccompat/v7';

const RUNNER_JAR = `apicurio-registry-app-${APICURIO_VERSION}-runner.jar`;
const COMPLETE_MARKER = '.complete';
const MIN_JAVA = 17;
const DEFAULT_HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 120_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Throws a helpful error unless Java 17+ and (when the jars are missing) Maven are there. */
function requireTools(needMaven: boolean): void {
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (java.error || java.status !== 0) {
    throw new Error(
      `Java ${MIN_JAVA}+ is needed to run Apicurio Registry ${APICURIO_VERSION}, but \`java\` ` +
        `was not found on the PATH. Install a JDK/JRE ${MIN_JAVA}+ ` +
        `(e.g. \`apt-get install openjdk-17-jre-headless\`).`,
    );
  }
  const match = /version "(\d+)(?:\.(\d+))?/.exec(`${java.stderr}${java.stdout}`);
  const major = match?.[1] === '1' ? Number(match[2]) : Number(match?.[1]);
  if (Number.isFinite(major) && major < MIN_JAVA) {
    throw new Error(`Apicurio Registry ${APICURIO_VERSION} needs Java ${MIN_JAVA}+, not ${major}.`);
  }
  if (!needMaven) return;
  const mvn = spawnSync('mvn', ['-v'], { encoding: 'utf8' });
  if (mvn.error || mvn.status !== 0) {
    throw new Error(
      `Maven (\`mvn\`) is needed once to fetch Apicurio Registry ${APICURIO_VERSION} from ` +
        `Maven Central, but it was not found on the PATH (e.g. \`apt-get install maven\`).`,
    );
  }
}

/**
 * The unpacked distribution (runner jar and lib/), fetched with Maven on first use. Concurrent
 * callers (test workers) each unpack into a folder of their own and the first rename wins.
 */
export async function ensureRegistryDistribution(
  log: (message: string) => void = () => undefined,
): Promise<string> {
  if (existsSync(path.join(REGISTRY_DIST, COMPLETE_MARKER))) return REGISTRY_DIST;
  requireTools(true);
  await fs.mkdir(LOCAL_HOME, { recursive: true });
  const staging = await fs.mkdtemp(path.join(LOCAL_HOME, `.apicurio-${APICURIO_VERSION}-`));
  log(`Fetching Apicurio Registry ${APICURIO_VERSION} from Maven Central (once, ~110 MB)…`);
  const result = spawnSync(
    'mvn',
    ['-q', '-B', '-f', REGISTRY_POM, 'dependency:unpack', `-Dregistry.dir=${staging}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (result.status !== 0 || !existsSync(path.join(staging, RUNNER_JAR))) {
    await fs.rm(staging, { recursive: true, force: true });
    throw new Error(
      `Fetching Apicurio Registry ${APICURIO_VERSION} failed (mvn exit ${result.status ?? '?'}):\n` +
        `${result.stdout}${result.stderr}`.trim(),
    );
  }
  await fs.writeFile(path.join(staging, COMPLETE_MARKER), `${new Date().toISOString()}\n`);
  try {
    await fs.rename(staging, REGISTRY_DIST);
  } catch (error) {
    // another process got there first: theirs is as good as ours
    await fs.rm(staging, { recursive: true, force: true });
    if (!existsSync(path.join(REGISTRY_DIST, COMPLETE_MARKER))) throw error;
  }
  return REGISTRY_DIST;
}

/** A TCP port that was free a moment ago. */
export async function freePort(host = DEFAULT_HOST): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

export interface StartRegistryOptions {
  /** Default: a free port. */
  port?: number;
  host?: string;
  /** HTTP basic authentication: these users (name → password) and no anonymous access. */
  users?: Record<string, string>;
  /** Serve https only, with this PEM certificate and key. */
  tls?: { certFile: string; keyFile: string };
  /** Where the registry's output goes; default: discarded. */
  logFile?: string;
  /** Keep running after this process exits (`npm run registry:start`). */
  detached?: boolean;
  /** Java heap limit; default 256m. */
  heap?: string;
  log?: (message: string) => void;
}

export interface LocalRegistry {
  /** The registry's root, e.g. http://127.0.0.1:40123. */
  rootUrl: string;
  /** Its Confluent-compatible API: what `schemaRegistry.url` should be. */
  url: string;
  port: number;
  pid: number;
  /** How long it took to answer, in ms. */
  startupMs: number;
  stop(): Promise<void>;
}

/** The JVM arguments of a registry: in-memory storage (the default), one port. */
function javaArguments(port: number, host: string, options: StartRegistryOptions): string[] {
  const properties: Record<string, string> = {
    'quarkus.http.host': host,
    'quarkus.log.console.color': 'false',
    'quarkus.banner.enabled': 'false',
  };
  if (options.tls) {
    Object.assign(properties, {
      'quarkus.http.ssl-port': String(port),
      'quarkus.http.port': '0',
      'quarkus.http.insecure-requests': 'disabled',
      'quarkus.http.ssl.certificate.files': options.tls.certFile,
      'quarkus.http.ssl.certificate.key-files': options.tls.keyFile,
    });
  } else {
    properties['quarkus.http.port'] = String(port);
  }
  if (options.users !== undefined) {
    // Quarkus' embedded users: plain HTTP basic authentication, no identity server needed
    Object.assign(properties, {
      'quarkus.http.auth.basic': 'true',
      'quarkus.security.users.embedded.enabled': 'true',
      'quarkus.security.users.embedded.plain-text': 'true',
      'quarkus.http.auth.permission.apis.paths': '/apis/*',
      'quarkus.http.auth.permission.apis.policy': 'authenticated',
    });
    for (const [name, password] of Object.entries(options.users)) {
      properties[`quarkus.security.users.embedded.users.${name}`] = password;
    }
  }
  return [
    `-Xmx${options.heap ?? '256m'}`,
    '-XX:+UseSerialGC',
    ...Object.entries(properties).map(([name, value]) => `-D${name}=${value}`),
    '-jar',
    RUNNER_JAR,
  ];
}

/** True once the registry answers HTTP on its Confluent API (any status: 401 is an answer too). */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const request = get(`${url}/subjects`, { rejectUnauthorized: false, timeout: 2_000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 500);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => {
      resolve(false);
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
}

/**
 * Starts Apicurio Registry and resolves once its Confluent-compatible API answers. Fetches the
 * distribution first if needed (Maven). Rejects with the end of its output if it exits first.
 */
export async function startLocalRegistry(
  options: StartRegistryOptions = {},
): Promise<LocalRegistry> {
  const home = await ensureRegistryDistribution(options.log);
  requireTools(false);
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? (await freePort(host));
  const scheme = options.tls ? 'https' : 'http';
  const rootUrl = `${scheme}://${host}:${port}`;
  const url = `${rootUrl}${CCOMPAT_PATH}`;
  const started = Date.now();
  let output = '';
  const logStream = options.logFile
    ? createWriteStream(options.logFile, { flags: 'a' })
    : undefined;
  if (logStream) await new Promise((resolve) => logStream.once('open', resolve));
  const child = spawn('java', javaArguments(port, host, options), {
    cwd: home,
    detached: options.detached === true,
    stdio: options.detached ? (logStream ? ['ignore', logStream, logStream] : 'ignore') : 'pipe',
  });
  if (!options.detached) {
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-20_000);
      logStream?.write(chunk);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start java');
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited(child);
      clearTimeout(timer);
    }
    logStream?.end();
  };
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  while (!(await answers(url))) {
    if (gone()) {
      logStream?.end();
      const tail = output.trimEnd().split('\n').slice(-30).join('\n');
      throw new Error(
        `Apicurio Registry ${APICURIO_VERSION} exited before answering at ${url}` +
          (options.logFile ? ` (log: ${options.logFile})` : '') +
          (tail ? `:\n${tail}` : ''),
      );
    }
    if (Date.now() - started > READY_TIMEOUT_MS) {
      await stop();
      throw new Error(`Apicurio Registry did not answer at ${url} within ${READY_TIMEOUT_MS} ms`);
    }
    await sleep(250);
  }
  if (options.detached) {
    child.unref();
    logStream?.end();
  }
  return { rootUrl, url, port, pid, startupMs: Date.now() - started, stop };
}

/** The state folder of `npm run registry:start` for a port: `.kafka/registry-<port>/`. */
export function registryStateDir(port: number): string {
  return path.join(LOCAL_HOME, `registry-${port}`);
}

/** REGISTRY_PORT from the environment (default 8081, Confluent's usual port), validated. */
export function registryPortFromEnv(): number {
  const raw = process.env.REGISTRY_PORT ?? '8081';
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`REGISTRY_PORT must be a TCP port number, got ${JSON.stringify(raw)}`);
  }
  return port;
}

/** The pid in a state folder if that process still runs, else undefined. */
export async function runningRegistryPid(stateDir: string): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number((await fs.readFile(path.join(stateDir, 'registry.pid'), 'utf8')).trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

export { errorMessage };

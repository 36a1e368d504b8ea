/**
 * `npm run kafka:start` — starts a local Kafka in the background on 127.0.0.1.
 *
 *   KAFKA_PORT       client port (default 9092); data and log live in .kafka/data-<port>/
 *   KAFKA_DATA_DIR   folder for the data dirs instead of .kafka/ (the jars stay in .kafka/)
 *
 *   npm run kafka:start -- --nodes 3             a 3-node cluster on KAFKA_PORT, +1, +2
 *                                                (data in .kafka/data-<port>-3nodes/)
 *   npm run kafka:start -- --security sasl-ssl   the client listener(s) SASL_SSL, SCRAM-SHA-512
 *                                                (data in .kafka/data-<port>[-3nodes]-sasl-ssl/)
 *
 * Prints the bootstrap address (for a cluster or a secured Kafka also each node's pid and the
 * BRIDGE_KAFKA_* variables to use it) and exits 0 while Kafka keeps running; if that Kafka is
 * already running (per its pid files) it prints the same again. Stop it with `npm run kafka:stop`.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  findRunningLocalKafka,
  kafkaPortFromEnv,
  KAFKA_VERSION,
  localKafkaDataDir,
  REPO_ROOT,
  startLocalKafka,
  waitForKafkaReady,
} from './local-kafka.js';
import {
  clusterNodeDir,
  clusterSecurityMaterial,
  findRunningLocalCluster,
  findRunningOnPort,
  KAFKA_SECURITIES,
  localDataDir,
  readClusterSpec,
  startLocalCluster,
  startMissingNodes,
  type KafkaSecurity,
} from './local-cluster.js';
import {
  bridgeKafkaEnv,
  kafkaJsSecurity,
  kcatCommand,
  shellQuote,
  type KafkaSecurityMaterial,
} from './security.js';

const MAX_NODES = 9;

interface Arguments {
  nodes: number;
  security: KafkaSecurity;
  /** Neither --nodes nor --security other than the defaults: the single node of old. */
  plain: boolean;
}

function parseArguments(argv: string[]): Arguments {
  const { values } = parseArgs({
    args: argv,
    options: { nodes: { type: 'string' }, security: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  const nodes = values.nodes === undefined ? 1 : Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) {
    throw new Error(`--nodes must be a number from 1 to ${MAX_NODES}, got ${values.nodes ?? ''}`);
  }
  const security = (values.security ?? 'none') as KafkaSecurity;
  if (!KAFKA_SECURITIES.includes(security)) {
    throw new Error(`--security must be one of ${KAFKA_SECURITIES.join(', ')}, got ${security}`);
  }
  return { nodes, security, plain: nodes === 1 && security === 'none' };
}

const relative = (file: string): string => {
  const rel = path.relative(REPO_ROOT, file);
  return rel.startsWith('..') ? file : rel;
};

/** Refuses to start when another kind of local Kafka runs on this port. */
async function refuseOtherKinds(port: number, dataDir: string): Promise<void> {
  const others = (await findRunningOnPort(port)).filter((kafka) => kafka.dataDir !== dataDir);
  const other = others[0];
  if (other) {
    throw new Error(
      `Another local Kafka runs on port ${port}: ${other.brokers} ` +
        `(pids ${other.nodes.map((node) => node.pid).join(', ')}, data ${relative(other.dataDir)}). ` +
        'Stop it first with npm run kafka:stop (or use another KAFKA_PORT).',
    );
  }
}

async function startSingleNode(port: number): Promise<void> {
  const dataDir = localKafkaDataDir(port);
  const logFile = path.join(dataDir, 'kafka.log');

  const running = await findRunningLocalKafka(dataDir);
  if (running) {
    await waitForKafkaReady(running.brokers); // it may still be starting
    console.log(
      `Kafka ${KAFKA_VERSION} ready at ${running.brokers} (already running, pid ${running.pid})`,
    );
    return;
  }
  await refuseOtherKinds(port, dataDir);

  const started = Date.now();
  const kafka = await interruptible((signal) =>
    startLocalKafka({
      port,
      dataDir,
      logFile,
      detached: true,
      signal,
      log: (message) => {
        console.error(message);
      },
    }),
  );
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `Kafka ${KAFKA_VERSION} ready at ${kafka.brokers} (pid ${kafka.pid}, started in ${seconds} s, ` +
      `log ${relative(logFile)}; stop with npm run kafka:stop)`,
  );
}

interface ClusterReport {
  brokers: string;
  dataDir: string;
  nodes: { id: number; port: number; pid: number }[];
  material: KafkaSecurityMaterial | undefined;
}

function exportLines(env: Record<string, string>): string[] {
  return Object.entries(env).map(([name, value]) => `export ${name}=${shellQuote(value)}`);
}

async function report(found: ClusterReport, args: Arguments, how: string): Promise<void> {
  const { brokers, dataDir, nodes, material } = found;
  const env = bridgeKafkaEnv(brokers, material);
  const envFile = path.join(dataDir, 'bridge.env');
  await writeFile(envFile, `${exportLines(env).join('\n')}\n`, { mode: 0o600 });
  const kind = `${args.nodes} node${args.nodes === 1 ? '' : 's'}${material ? ', SASL_SSL' : ''}`;
  const flags = [
    ...(args.nodes > 1 ? ['--nodes', String(args.nodes)] : []),
    ...(args.security !== 'none' ? ['--security', args.security] : []),
  ].join(' ');
  const lines = [
    `Kafka ${KAFKA_VERSION} (${kind}) ready at ${brokers} (${how}; data ${relative(dataDir)}; ` +
      'stop with npm run kafka:stop)',
    ...nodes.map(
      (node) =>
        `  node ${node.id}  127.0.0.1:${node.port}  pid ${node.pid}  ` +
        `log ${relative(path.join(clusterNodeDir(dataDir, node.id), 'kafka.log'))}`,
    ),
  ];
  if (args.nodes >= 3) {
    lines.push(
      '  topics: default.replication.factor=3, min.insync.replicas=2 (also __consumer_offsets ' +
        'and __transaction_state): acks=all keeps working with one node down',
    );
  }
  if (material) {
    lines.push(
      `  client listeners: SASL_SSL, SCRAM-SHA-512 user ${material.username}, CA ${relative(material.caFile)}`,
      '  (replication and the KRaft quorum use PLAINTEXT listeners on 127.0.0.1, other ports)',
    );
  }
  lines.push(
    '',
    `Point the bridge at it (also in ${relative(envFile)}; ` +
      `eval "$(npm run -s kafka:start -- ${flags} | grep ^export)" sets them):`,
    ...exportLines(env),
  );
  if (material) lines.push('', 'List the brokers with kcat:', kcatCommand(brokers, material));
  console.log(lines.join('\n'));
}

async function startCluster(port: number, args: Arguments): Promise<void> {
  const dataDir = localDataDir(port, args.nodes, args.security);
  const running = await findRunningLocalCluster(dataDir);
  if (running && running.nodes.length < running.spec.nodes.length) {
    // Some nodes died (or were killed): start them again with the ports they had.
    const started = Date.now();
    const ids = await startMissingNodes(dataDir);
    const again = await findRunningLocalCluster(dataDir);
    if (!again) throw new Error(`The Kafka in ${relative(dataDir)} stopped while starting`);
    const material =
      again.spec.security === 'sasl-ssl' ? await clusterSecurityMaterial(dataDir) : undefined;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    await report(
      { ...again, dataDir, material },
      args,
      `node ${ids.join(', ')} restarted in ${seconds} s`,
    );
    return;
  }
  if (running) {
    const material =
      readClusterSpec(dataDir)?.security === 'sasl-ssl'
        ? await clusterSecurityMaterial(dataDir)
        : undefined;
    await waitForKafkaReady(running.brokers, {
      security: material ? kafkaJsSecurity(material) : {},
      brokerCount: running.nodes.length,
    });
    await report({ ...running, dataDir, material }, args, 'already running');
    return;
  }
  await refuseOtherKinds(port, dataDir);

  const started = Date.now();
  const cluster = await interruptible((signal) =>
    startLocalCluster({
      dataDir,
      nodes: args.nodes,
      port,
      security: args.security,
      detached: true,
      signal,
      log: (message) => {
        console.error(message);
      },
    }),
  );
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  await report(cluster, args, `started in ${seconds} s`);
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  const port = kafkaPortFromEnv();
  if (args.plain) await startSingleNode(port);
  else await startCluster(port, args);
}

/** Runs `start` with a signal that Ctrl-C (SIGINT) or SIGTERM aborts while it runs. */
async function interruptible<T>(start: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const onSignal = (): void => {
    abort.abort(new Error('interrupted'));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await start(abort.signal);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);

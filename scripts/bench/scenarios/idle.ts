/**
 * Idle connections: how fast a server accepts them (CONNECT → CONNACK, many pending at once) and
 * what each costs in resident memory once open (keep alive 300 s: no traffic meanwhile).
 */
import { Generators, type Load } from '../load.js';
import { CpuMeter, openFilesLimit, rssBytes } from '../os-stats.js';
import { ratiosToPeers, round, type Row } from '../report.js';
import {
  bridgeEnv,
  startAedesGlue,
  startBridgeServer,
  startMosquitto,
  type Server,
} from '../servers.js';
import { onServer, sleep, uplinkRule, type Context, type Scenario } from './context.js';

/** File descriptors a generator keeps for itself besides its connections. */
const SPARE_FILES = 100;
const CONCURRENCY = 200;

export const idle: Scenario = {
  name: 'idle',
  async run(context) {
    const { kafka } = context;
    const connections = context.options.idleConnections;
    // each generator process holds up to its open-files limit of connections
    const perProcess = openFilesLimit() - SPARE_FILES;
    const procs = Math.max(context.options.procs, Math.ceil(connections / perProcess));
    const rows: Row[] = [
      await onServer(
        'bridge',
        () =>
          startBridgeServer({
            brokers: kafka.brokers,
            mappings: uplinkRule(kafka.topic),
            env: bridgeEnv(connections),
          }),
        (server) => measure(context, server, connections, procs),
        context,
      ),
      await onServer(
        'mosquitto',
        startMosquitto,
        (server) => measure(context, server, connections, procs),
        context,
      ),
      await onServer(
        'aedes-glue',
        async () => startAedesGlue(kafka.brokers, await kafka.newTopic()),
        (server) => measure(context, server, connections, procs),
        context,
      ),
    ];
    return {
      name: this.name,
      title: 'Idle connections',
      parameters:
        `${connections.toLocaleString('en-US')} MQTT 3.1.1 connections (clean session, keep alive 300 s) from ${procs} ` +
        `generator processes (at most ${perProcess.toLocaleString('en-US')} each: their open-files limit), ` +
        `${CONCURRENCY} CONNECTs pending at once per process, after a fifth as many were opened and closed ` +
        '(connects/s, cold: their rate, the server just started). Per second: connections accepted (CONNACK) ' +
        'per second; CPU: µs per connect; KB/conn: growth of RSS from before the first connection to all open, per connection; ' +
        'KB/conn, a fifth more: then a fifth more connections open, the growth of RSS per ' +
        'connection: what one more costs, without what grew once for the first ones.',
      rows,
      ratios: ratiosToPeers(rows),
    };
  },
};

async function measure(
  context: Context,
  server: Server,
  connections: number,
  procs: number,
): Promise<Row> {
  await sleep(1_000);
  const before = rssBytes(server.pids());
  // a fifth as many first, opened then closed: their rate is the cold one (code not yet
  // optimised, heap not yet grown; a restarted server's reconnecting fleet), the run's the warm
  const cold = await openAndClose(server.port, procs, Math.max(100, Math.round(connections / 5)));
  // then a fifth more (within the open-files limit the server shares with this process): the
  // growth over those is what one more connection costs, without what grew once for the first
  // ones (the JavaScript heap's young generation, pools)
  const more = Math.max(
    1,
    Math.min(Math.round(connections / 5), openFilesLimit() - connections - 10 * SPARE_FILES),
  );
  const all = new Generators(idleLoad(server.port, procs, connections, 'idle'));
  const extra = new Generators(idleLoad(server.port, procs, more, 'idle-more'));
  try {
    let cpu: CpuMeter | undefined;
    const outcome = await all.run(() => (cpu = new CpuMeter(server.pids())));
    const connected = outcome.total('connected');
    const cpuSeconds = cpu?.seconds() ?? 0;
    // what the server allocated lazily (buffers, timers) is in by then
    await sleep(2_000);
    const after = rssBytes(server.pids());
    const added = (await extra.run()).total('connected');
    await sleep(2_000);
    const afterMore = rssBytes(server.pids());
    return {
      peer: server.name,
      count: connected,
      rate: Math.round(connected / outcome.seconds),
      cpuUs: round((cpuSeconds * 1e6) / connected, 1),
      loadCpuUs: round((outcome.cpuSeconds * 1e6) / connected, 1),
      rssMb: Math.round(after / 2 ** 20),
      extra: {
        'connects/s, cold': cold,
        'KB/conn': round((after - before) / 1024 / connected, 2),
        'KB/conn, a fifth more': round((afterMore - after) / 1024 / Math.max(1, added), 2),
      },
    };
  } finally {
    for (const generators of [all, extra]) {
      await generators.close();
      generators.kill();
    }
  }
}

/** Opens `connections` and closes them: their connects per second. */
async function openAndClose(port: number, procs: number, connections: number): Promise<number> {
  const generators = new Generators(idleLoad(port, procs, connections, 'warm'));
  try {
    const outcome = await generators.run();
    return Math.round(outcome.total('connected') / outcome.seconds);
  } finally {
    await generators.close();
    generators.kill();
  }
}

function idleLoad(port: number, procs: number, connections: number, prefix: string): Load {
  return { mode: 'idle', port, procs, connections, prefix, keepalive: 300 };
}

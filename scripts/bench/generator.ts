/**
 * A load generator process: many MQTT 3.1.1 connections over raw sockets with packets encoded
 * before the run (scripts/bench/mqtt-wire.ts), never inside the process of the server it loads.
 * It speaks the suite's JSON-line protocol (scripts/bench/child.ts): ready, go, result.
 *
 *   node --import tsx scripts/bench/generator.ts --mode MODE --port P [options]
 *
 * Modes:
 *   publish     each connection sends its share of --messages: QoS 1 with --window publishes
 *               unacknowledged at once (result: acknowledged, PUBACK latency), or QoS 0 as fast
 *               as TCP takes them, then a PINGREQ whose PINGRESP says the server has read all
 *   fixed-rate  QoS 1 at --rate publishes per second in all for --seconds (PUBACK latency)
 *   subscribe   each connection subscribes to devices/<client id>/commands and receives until
 *               --messages arrived or nothing came for --idle-seconds; latency from the send
 *               time the producer wrote in the payload's first 8 bytes (float64, epoch ms)
 *   idle        on go, opens the connections (--concurrency CONNECTs pending at once) and
 *               reports connects per second; holds them until told `close`
 *
 * Client ids are <prefix><n> for n from --first; a publish goes to bench/<client id>/data, or
 * with --spread S to site<k>/<client id>/data, k cycling over S rules (the rules scenario). Its
 * payload is --payload bytes, or with --telemetry a JSON reading (the compression scenario).
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { cpuSecondsSince, nextCommand, readyThenGo, report } from './child.js';
import { LatencyHistogram } from './histogram.js';
import { shareOf } from './load.js';
import {
  connectPacket,
  PacketType,
  PINGREQ,
  packetId,
  publishParts,
  publishPacket,
  pubackPacket,
  subscribePacket,
  WireConnection,
  type Packet,
} from './mqtt-wire.js';
import { telemetryPayload } from './payloads.js';

const { values: options } = parseArgs({
  options: {
    mode: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    connections: { type: 'string', default: '25' },
    prefix: { type: 'string', default: 'gen' },
    first: { type: 'string', default: '0' },
    qos: { type: 'string', default: '1' },
    window: { type: 'string', default: '32' },
    payload: { type: 'string', default: '256' },
    telemetry: { type: 'boolean', default: false },
    messages: { type: 'string', default: '0' },
    rate: { type: 'string', default: '0' },
    seconds: { type: 'string', default: '0' },
    'warm-seconds': { type: 'string', default: '0' },
    spread: { type: 'string', default: '0' },
    'idle-seconds': { type: 'string', default: '5' },
    keepalive: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '200' },
  },
});

const HOST = options.host;
const PORT = Number(options.port);
const CONNECTIONS = Number(options.connections);
const FIRST = Number(options.first);
const QOS = Number(options.qos) === 0 ? 0 : 1;
const WINDOW = Number(options.window);
const MESSAGES = Number(options.messages);
/** Seconds after which a publish run sends no more (it still waits for the acknowledgements). */
const SECONDS = Number(options.seconds);
const KEEPALIVE = Number(options.keepalive);
/** Packet ids of fixed-rate mode: enough for any realistic number in flight per connection. */
const FIXED_RATE_IDS = 1024;

const clientId = (index: number): string => `${options.prefix}${FIRST + index}`;

function topicOf(connection: number, slot: number): string {
  const spread = Number(options.spread);
  if (spread <= 0) return `bench/${clientId(connection)}/data`;
  return `site${((FIRST + connection) * WINDOW + slot) % spread}/${clientId(connection)}/data`;
}

function payloadOf(connection: number, slot: number): Buffer {
  return options.telemetry
    ? telemetryPayload(FIRST + connection, slot)
    : Buffer.alloc(Number(options.payload), 'x');
}

async function openAll(count: number, concurrency: number): Promise<WireConnection[]> {
  const connections: WireConnection[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      connections[index] = await WireConnection.open(HOST, PORT, clientId(index), KEEPALIVE);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return connections;
}

const now = (): number => performance.now();

/** QoS 1 with a window of publishes in flight per connection. */
async function publishQos1(connections: WireConnection[]): Promise<object> {
  const latencies = new LatencyHistogram();
  const deadline = SECONDS > 0 ? now() + SECONDS * 1000 : Infinity;
  let acked = 0;
  await Promise.all(
    connections.map(
      (connection, index) =>
        new Promise<void>((resolve) => {
          const quota = shareOf(MESSAGES, CONNECTIONS, index);
          // packet ids 1..WINDOW: slot s is always id s + 1, one in flight per id at a time
          const packets = Array.from({ length: WINDOW }, (_, slot) =>
            publishPacket(topicOf(index, slot), payloadOf(index, slot), 1, slot + 1),
          );
          const sentAt = new Float64Array(WINDOW + 1);
          let sent = 0;
          let done = 0;
          const fill = (): void => {
            const stop = now() >= deadline;
            while (!stop && sent < quota && sent - done < WINDOW) {
              const id = (sent % WINDOW) + 1;
              sentAt[id] = now();
              connection.socket.write(packets[id - 1] as Buffer);
              sent++;
            }
            if (done === sent && (sent >= quota || stop)) resolve();
          };
          connection.onPacket = (packet) => {
            if (packet.type !== PacketType.puback) return;
            latencies.record(now() - (sentAt[packetId(packet)] ?? 0));
            done++;
            acked++;
            fill();
          };
          connection.socket.once('close', () => {
            resolve();
          });
          fill();
        }),
    ),
  );
  return { acked, latency: latencies.toJSON() };
}

/** QoS 0 as fast as TCP takes it, WINDOW publishes per write; then PINGREQ → PINGRESP. */
async function publishQos0(connections: WireConnection[]): Promise<object> {
  const deadline = SECONDS > 0 ? now() + SECONDS * 1000 : Infinity;
  let sent = 0;
  await Promise.all(
    connections.map(async (connection, index) => {
      const quota = shareOf(MESSAGES, CONNECTIONS, index);
      const packets = Array.from({ length: WINDOW }, (_, slot) =>
        publishPacket(topicOf(index, slot), payloadOf(index, slot), 0, 0),
      );
      const burst = Buffer.concat(packets);
      const { socket } = connection;
      let mine = 0;
      while (mine < quota && now() < deadline && !socket.destroyed) {
        const count = Math.min(WINDOW, quota - mine);
        const written = socket.write(
          count === WINDOW ? burst : Buffer.concat(packets.slice(0, count)),
        );
        mine += count;
        if (!written) {
          await Promise.race([
            new Promise((resolve) => socket.once('drain', resolve)),
            connection.closed,
          ]);
        }
      }
      sent += mine;
      // the server handles a connection's packets in order: PINGRESP means it has read them all
      if (socket.destroyed) return;
      const pong = connection.next(PacketType.pingresp);
      socket.write(PINGREQ);
      await pong.catch(() => undefined);
    }),
  );
  return { sent };
}

/**
 * QoS 1 at a fixed total rate, spread over the connections in turn: first --warm-seconds not
 * measured (this process, its connections and the server reach their steady state), then
 * --seconds whose publishes are measured, without a pause or a new connection between them.
 */
async function fixedRate(connections: WireConnection[]): Promise<object> {
  const rate = Number(options.rate);
  const latencies = new LatencyHistogram();
  let warmAcked = 0;
  const started = now();
  const measureFrom = started + Number(options['warm-seconds']) * 1000;
  const end = measureFrom + SECONDS * 1000;
  const states = connections.map((connection, index) => {
    const packets = Array.from({ length: FIXED_RATE_IDS }, (_, slot) =>
      publishPacket(topicOf(index, slot % WINDOW), payloadOf(index, slot % WINDOW), 1, slot + 1),
    );
    const state = {
      connection,
      packets,
      sentAt: new Float64Array(FIXED_RATE_IDS + 1),
      next: 0,
      inFlight: 0,
    };
    connection.onPacket = (packet) => {
      if (packet.type !== PacketType.puback) return;
      const id = packetId(packet);
      const sentAt = state.sentAt[id] ?? 0;
      if (sentAt >= measureFrom) latencies.record(now() - sentAt);
      else warmAcked++;
      state.sentAt[id] = 0;
      state.inFlight--;
    };
    return state;
  });
  let sent = 0;
  /** Publishes not sent because every packet id of their connection was still in flight. */
  let skipped = 0;
  /** The counts when the measured seconds began. */
  let atMeasureFrom: { sent: number; skipped: number } | undefined;
  while (now() < end) {
    if (atMeasureFrom === undefined && now() >= measureFrom) atMeasureFrom = { sent, skipped };
    const due = Math.floor(((now() - started) / 1000) * rate);
    while (sent + skipped < due) {
      const state = states[(sent + skipped) % states.length];
      if (state === undefined) break;
      const id = (state.next % FIXED_RATE_IDS) + 1;
      if (state.sentAt[id] !== 0) {
        skipped++;
        continue;
      }
      state.next++;
      state.sentAt[id] = now();
      state.inFlight++;
      state.connection.socket.write(state.packets[id - 1] as Buffer);
      sent++;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const settleBy = now() + 10_000;
  while (states.some((state) => state.inFlight > 0) && now() < settleBy) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return {
    sent: sent - (atMeasureFrom?.sent ?? sent),
    skipped: skipped - (atMeasureFrom?.skipped ?? skipped),
    acked: latencies.count,
    warmAcked,
    sendSeconds: (end - measureFrom) / 1000,
    latency: latencies.toJSON(),
  };
}

/** Receives what the server delivers; wall-clock latency from the stamp in the payload. */
async function subscribe(
  connections: WireConnection[],
  qos: 0 | 1,
): Promise<() => Promise<object>> {
  const latencies = new LatencyHistogram();
  let received = 0;
  let firstAt = 0;
  let lastAt = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const onPublish = (connection: WireConnection, packet: Packet): void => {
    const parts = publishParts(packet);
    const arrived = performance.timeOrigin + now();
    latencies.record(arrived - packet.data.readDoubleBE(parts.payload));
    if (parts.qos > 0) connection.socket.write(pubackPacket(parts.id));
    if (received === 0) firstAt = arrived;
    lastAt = arrived;
    if (++received >= MESSAGES) finish();
  };
  await Promise.all(
    connections.map(async (connection) => {
      const suback = connection.next(PacketType.suback);
      connection.socket.write(subscribePacket(1, `devices/${connection.clientId}/commands`, qos));
      await suback;
      connection.onPacket = (packet) => {
        if (packet.type === PacketType.publish) onPublish(connection, packet);
      };
    }),
  );
  return async () => {
    const startedAt = performance.timeOrigin + now();
    const idleMs = Number(options['idle-seconds']) * 1000;
    // before the first message the server may still be joining its consumer group
    const watch = setInterval(() => {
      const quiet = performance.timeOrigin + now() - (received === 0 ? startedAt : lastAt);
      if (quiet > (received === 0 ? 60_000 : idleMs)) finish();
    }, 100);
    await finished;
    clearInterval(watch);
    return { received, firstAt, lastAt, latency: latencies.toJSON() };
  };
}

async function idle(): Promise<void> {
  await readyThenGo();
  const cpu = process.cpuUsage();
  const started = now();
  const sockets = await openIdle(CONNECTIONS, Number(options.concurrency));
  report({
    connected: sockets.length,
    seconds: (now() - started) / 1000,
    cpuSeconds: cpuSecondsSince(cpu),
  });
  while ((await nextCommand()) !== 'close') {
    // connections stay open until the suite has measured the server
  }
  // closed with a reset: no TIME_WAIT left behind on this side, whose ports the next connects
  // (the next server's run) would otherwise have to search past
  for (const socket of sockets) socket.resetAndDestroy();
}

/**
 * Opens `count` connections, `concurrency` CONNECTs pending at once, with as little of this
 * process's own work per connection as it takes (it shares the cores with the server it
 * measures): one write of CONNECT, the CONNACK checked in place; nothing is read afterwards.
 */
function openIdle(count: number, concurrency: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  let next = 0;
  return new Promise((resolve, reject) => {
    let lanes = Math.min(concurrency, count);
    if (lanes === 0) resolve(sockets);
    const open = (): void => {
      if (next >= count) {
        if (--lanes === 0) resolve(sockets);
        return;
      }
      const id = clientId(next++);
      const socket = connectTcp({ host: HOST, port: PORT });
      const failed = (error?: Error): void => {
        reject(error ?? new Error(`${id}: closed before CONNACK`));
      };
      socket.once('error', failed);
      socket.once('close', failed);
      socket.once('connect', () => socket.write(connectPacket(id, KEEPALIVE)));
      socket.once('data', (chunk: Buffer) => {
        // CONNACK: 0x20, length 2, flags, return code 0
        if (chunk[0] !== 0x20 || chunk[3] !== 0) {
          reject(
            new Error(`${id}: no successful CONNACK (${chunk.subarray(0, 4).toString('hex')})`),
          );
          return;
        }
        socket.removeListener('error', failed);
        socket.removeListener('close', failed);
        socket.on('error', () => undefined);
        socket.pause();
        sockets.push(socket);
        open();
      });
    };
    for (let lane = 0; lane < lanes; lane++) open();
  });
}

async function main(): Promise<void> {
  const mode = options.mode;
  if (mode === 'idle') {
    await idle();
    return;
  }
  const connections = await openAll(CONNECTIONS, Number(options.concurrency));
  let run: () => Promise<object>;
  if (mode === 'publish')
    run = () => (QOS === 1 ? publishQos1(connections) : publishQos0(connections));
  else if (mode === 'fixed-rate') run = () => fixedRate(connections);
  else if (mode === 'subscribe') run = await subscribe(connections, QOS);
  else throw new Error(`--mode ${mode ?? '(none)'}: publish, fixed-rate, subscribe or idle`);
  await readyThenGo();
  const cpu = process.cpuUsage();
  const started = now();
  const result = await run();
  report({ ...result, seconds: (now() - started) / 1000, cpuSeconds: cpuSecondsSince(cpu) });
  for (const connection of connections) connection.close();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

/**
 * Three bridges behind HAProxy (issue 13), the way a fleet is deployed: the devices know one
 * address, HAProxy spreads their connections round robin over the bridges (TCP, health checks
 * every 500 ms), and the bridges share their sessions in Kafka (sessions.store kafka). A
 * session follows its client id to whatever bridge HAProxy picks; messages cross bridges at
 * their QoS; shared subscriptions spread over members on every bridge; downlink commands reach
 * their devices in order while a bridge restarts; a bridge killed with SIGKILL under load loses
 * nothing acknowledged and its sessions resume elsewhere; the whole fleet stopped and started
 * keeps every session.
 *
 * One fleet is shared by the tests that stop no bridge; the tests that stop or kill bridges
 * start a fleet (and an HAProxy) of their own.
 */
import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { IConnackPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../scripts/kafka/local-kafka.js';
import { BridgeProcess, stopAllBridgeProcesses } from '../support/bridge-process.js';
import { connectClient } from '../support/bridge.js';
import { RawClient } from '../support/raw-client.js';
import { Haproxy, haproxyBinary, stopAllHaproxies } from '../support/haproxy.js';
import {
  connectedProducer,
  createTopic,
  kafkaBrokers,
  uniqueId,
} from '../support/kafka-helpers.js';
import {
  checkStreams,
  readAllRecords,
  reportLine,
  StreamDevice,
} from '../support/stream-devices.js';
import { waitFor } from '../support/wait-for.js';

const HAPROXY_INSTALLED = haproxyBinary() !== undefined;
/** Said in the names of the skipped suites, and once on the console. */
const SKIPPED = HAPROXY_INSTALLED
  ? ''
  : ' (skipped: haproxy is not installed; apt-get install haproxy)';
if (!HAPROXY_INSTALLED) console.warn(`[fleet-haproxy]${SKIPPED}`);

const NAMES = ['a', 'b', 'c'] as const;
type Name = (typeof NAMES)[number];

interface Fleet {
  id: string;
  haproxy: Haproxy;
  bridges: Record<Name, BridgeProcess>;
  /** Downlink: a record keyed by a device id goes to `devices/<id>/cmd` at QoS 1. */
  commandsTopic: string;
  /** Uplink: `up/<device>/data` goes here, keyed by the device id. */
  uplinkTopic: string;
  /** (Re)starts a bridge with its instance id and MQTT port (HAProxy's server stays valid). */
  start(name: Name): Promise<BridgeProcess>;
}

/** Three bridges sharing session topics of their own, and HAProxy in front of them. */
async function startFleet(env: Record<string, string> = {}): Promise<Fleet> {
  const id = uniqueId();
  const [commandsTopic, uplinkTopic] = await Promise.all([
    createTopic('fleet-commands', 3),
    createTopic('fleet-uplink', 3),
  ]);
  const mappings = [
    'uplink:',
    '  - name: data',
    '    from: up/{device}/data',
    `    to: { topic: ${uplinkTopic}, key: '{device}' }`,
    'downlink:',
    '  - name: commands',
    `    from: ${commandsTopic}`,
    "    to: { topic: 'devices/{key}/cmd', qos: 1 }",
    '',
  ].join('\n');
  const ports = new Map<Name, number>();
  for (const name of NAMES) {
    let port: number;
    do port = await findFreePort();
    while ([...ports.values()].includes(port));
    ports.set(name, port);
  }
  const bridges = {} as Record<Name, BridgeProcess>;
  const start = async (name: Name) => {
    const bridge = await BridgeProcess.start({
      brokers: kafkaBrokers().join(','),
      mappings,
      mqttPort: ports.get(name),
      env: {
        BRIDGE_SESSIONS_STORE: 'kafka',
        BRIDGE_SESSIONS_TOPIC: `fleet-sessions-${id}`,
        BRIDGE_SESSIONS_MESSAGES_TOPIC: `fleet-messages-${id}`,
        BRIDGE_SESSIONS_PARTITIONS: '3',
        BRIDGE_INSTANCE_ID: `${name}-${id}`,
        BRIDGE_DOWNLINK_GROUP_ID: `fleet-downlink-${id}`,
        BRIDGE_DOWNLINK_SESSION_TIMEOUT_MS: '6000',
        BRIDGE_AUTH_ALLOW_ANONYMOUS: 'true',
        BRIDGE_INSTANCE_TIMEOUT_MS: '3000',
        BRIDGE_SESSIONS_RESTART_GRACE_MS: '20000',
        // behind HAProxy every client has HAProxy's address: no limits per address
        BRIDGE_MQTT_MAX_CONNECTIONS_PER_ADDRESS: '0',
        BRIDGE_MQTT_MAX_CONNECT_RATE: '0',
        ...env,
      },
    });
    bridges[name] = bridge;
    return bridge;
  };
  // the first one creates the session topics
  await start('a');
  await Promise.all([start('b'), start('c')]);
  const haproxy = await Haproxy.start({
    servers: NAMES.map((name) => ({ name, port: ports.get(name) ?? 0 })),
  });
  await haproxy.waitForServers('UP');
  return { id, haproxy, bridges, commandsTopic, uplinkTopic, start };
}

/** The bridge (HAProxy server) a client's connection went to. */
async function serverOf(haproxy: Haproxy, client: MqttClient): Promise<string> {
  const port = (client.stream as unknown as Socket).localPort ?? 0;
  return waitFor(() => haproxy.serverOf(port), { what: `the server of client port ${port}` });
}

/**
 * Makes HAProxy's next connection go to `server`: its round robin goes a → b → c → a, so once
 * a connection went to the server before it, the next one goes to it. (Spacer connections
 * close without CONNECT.)
 */
async function aimAt(haproxy: Haproxy, server: Name): Promise<void> {
  const before = NAMES[(NAMES.indexOf(server) + NAMES.length - 1) % NAMES.length];
  for (let attempt = 0; attempt < 2 * NAMES.length; attempt++) {
    const socket = net.connect({ host: '127.0.0.1', port: haproxy.port });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    const landed = await waitFor(() => haproxy.serverOf(socket.localPort ?? 0), {
      what: 'a spacer connection through haproxy',
    });
    socket.destroy();
    if (landed === before) return;
  }
  throw new Error(`haproxy's round robin never went to ${before}`);
}

/** An MQTT.js client connected through HAProxy to the bridge `server`. */
async function connectTo(
  haproxy: Haproxy,
  server: Name,
  options: IClientOptions,
  setUp?: (client: MqttClient) => void,
): Promise<MqttClient> {
  await aimAt(haproxy, server);
  const client = await connectClient(haproxy.port, options, setUp);
  expect(await serverOf(haproxy, client)).toBe(server);
  return client;
}

interface Got {
  topic: string;
  payload: string;
  qos: number;
  dup: boolean;
}

/** Every message `client` receives from now on. */
function inbox(client: MqttClient): Got[] {
  const got: Got[] = [];
  client.on('message', (topic, payload, packet) => {
    got.push({ topic, payload: payload.toString(), qos: packet.qos, dup: packet.dup });
  });
  return got;
}

/** The CONNACK of a client's (re)connections, in order. */
function connacks(client: MqttClient): IConnackPacket[] {
  const list: IConnackPacket[] = [];
  client.on('connect', (connack) => list.push(connack));
  return list;
}

/** Distinct values in the order first received, and how many came again. */
function firsts(values: string[]): { order: string[]; repeats: number } {
  const seen = new Set<string>();
  for (const value of values) seen.add(value);
  return { order: [...seen], repeats: values.length - seen.size };
}

function range<T = string>(count: number, make: (index: number) => T): T[] {
  return Array.from({ length: count }, (_, index) => make(index));
}

const persistent = {
  protocolVersion: 5 as const,
  clean: false,
  properties: { sessionExpiryInterval: 600 },
};

/** A device that reconnects through HAProxy on its own and relies on its session (no resubscribe). */
const reconnecting = { ...persistent, reconnectPeriod: 500, resubscribe: false };

/**
 * Sends `hello` to each device (downlink) until every one got it: the bridge reading each
 * device's commands knows its session.
 */
async function untilCommandsRouted(fleet: Fleet, devices: Map<string, Got[]>): Promise<void> {
  const producer = await connectedProducer();
  await waitFor(
    async () => {
      const missing = [...devices].filter(([, got]) => !got.some((m) => m.payload === 'hello'));
      if (missing.length === 0) return true;
      await producer.send({
        topic: fleet.commandsTopic,
        messages: missing.map(([device]) => ({ key: device, value: 'hello' })),
      });
      return false;
    },
    { what: 'a first command to every device', intervalMs: 500, timeoutMs: 30_000 },
  );
}

afterAll(async () => {
  await stopAllHaproxies();
  await stopAllBridgeProcesses();
});

describe.skipIf(!HAPROXY_INSTALLED)(`three bridges behind HAProxy (shared fleet)${SKIPPED}`, () => {
  let fleet: Fleet;

  beforeAll(async () => {
    // a small downlink budget: messages kept for offline sessions must not hold it
    fleet = await startFleet({ BRIDGE_DOWNLINK_MAX_UNSETTLED: '1000' });
  }, 120_000);

  it('takeover across instances: 0x8E to the old connection, the session (subscriptions, queue) moves, a delayed will stays quiet', async () => {
    const { haproxy } = fleet;
    const id = uniqueId();
    const topic = `move/${id}`;
    const watcher = await connectClient(haproxy.port, { clientId: `watch-${id}` });
    const wills = inbox(watcher);
    await watcher.subscribeAsync(`${topic}/will`, { qos: 1 });
    const device = {
      ...persistent,
      clientId: `mover-${id}`,
      will: {
        topic: `${topic}/will`,
        payload: Buffer.from('gone'),
        qos: 1 as const,
        retain: false,
        properties: { willDelayInterval: 30 },
      },
    };

    const first = await connectTo(haproxy, 'a', device);
    first.on('error', () => undefined);
    const firstGot = inbox(first);
    const disconnects: number[] = [];
    first.on('disconnect', (packet) => disconnects.push(packet.reasonCode ?? 0));
    await first.subscribeAsync(`${topic}/cmd`, { qos: 1 });
    await first.subscribeAsync(`${topic}/q2`, { qos: 2 });

    let secondGot: Got[] = [];
    let secondAcks: IConnackPacket[] = [];
    const takeoverStarted = Date.now();
    const second = await connectTo(haproxy, 'b', device, (client) => {
      secondGot = inbox(client);
      secondAcks = connacks(client);
    });
    const takeoverMs = Date.now() - takeoverStarted;
    expect(secondAcks[0]?.sessionPresent).toBe(true);
    await waitFor(() => disconnects.length > 0, { what: 'DISCONNECT on the old connection' });
    expect(disconnects).toEqual([0x8e]);
    await waitFor(() => !first.connected, { what: 'the old connection closed' });

    // its subscriptions came along: a publish on the third bridge reaches it on b, once
    const publisher = await connectTo(haproxy, 'c', { clientId: `move-pub-${id}` });
    await publisher.publishAsync(`${topic}/cmd`, 'moved', { qos: 1 });
    await waitFor(() => secondGot.some((m) => m.payload === 'moved'), { what: "'moved' on b" });
    // the delayed will was not sent: the session was resumed (marker after the takeover)
    await watcher.publishAsync(`${topic}/will`, 'marker', { qos: 1 });
    await waitFor(() => wills.some((m) => m.payload === 'marker'), { what: 'the marker' });
    expect(wills.map((m) => m.payload)).toEqual(['marker']);

    // offline on b, messages wait; the device comes back on c and gets them, in order, once
    await second.endAsync();
    for (let index = 0; index < 20; index++) {
      await publisher.publishAsync(`${topic}/cmd`, `q1-${index}`, { qos: 1 });
    }
    for (let index = 0; index < 5; index++) {
      await publisher.publishAsync(`${topic}/q2`, `q2-${index}`, { qos: 2 });
    }
    let thirdGot: Got[] = [];
    let thirdAcks: IConnackPacket[] = [];
    await connectTo(haproxy, 'c', { ...device, will: undefined }, (client) => {
      thirdGot = inbox(client);
      thirdAcks = connacks(client);
    });
    expect(thirdAcks[0]?.sessionPresent).toBe(true);
    await waitFor(() => thirdGot.length >= 25, { what: '25 queued messages on c' }).catch(
      () => undefined,
    );
    const payloads = (got: Got[], suffix: string) =>
      got.filter((m) => m.topic.endsWith(suffix)).map((m) => m.payload);
    expect(payloads(thirdGot, '/cmd')).toEqual(range(20, (index) => `q1-${index}`));
    expect(payloads(thirdGot, '/q2')).toEqual(range(5, (index) => `q2-${index}`));
    expect(thirdGot.filter((m) => m.topic.endsWith('/q2')).every((m) => m.qos === 2)).toBe(true);
    expect(payloads(secondGot, '/cmd')).toEqual(['moved']);
    expect(firstGot).toEqual([]);
    console.log(`[fleet-haproxy] takeover a → b through haproxy: ${takeoverMs} ms to CONNACK`);
  });

  it('publish/subscribe across instances: QoS 0/1/2 from every bridge to subscribers on every bridge, once and in order', async () => {
    const { haproxy } = fleet;
    const id = uniqueId();
    const topic = `x/${id}`;
    const subscribers = new Map<Name, Got[]>();
    for (const name of NAMES) {
      const client = await connectTo(haproxy, name, {
        ...persistent,
        clientId: `sub-${name}-${id}`,
      });
      subscribers.set(name, inbox(client));
      await client.subscribeAsync(`${topic}/#`, { qos: 2 });
    }
    const publishers = new Map<Name, MqttClient>();
    for (const name of NAMES) {
      publishers.set(
        name,
        await connectTo(haproxy, name, { clientId: `pub-${name}-${id}`, protocolVersion: 5 }),
      );
    }
    // every bridge knows every subscriber once a probe from each reached each
    await waitFor(
      async () => {
        for (const [name, publisher] of publishers) {
          await publisher.publishAsync(`${topic}/probe/${name}`, 'probe', { qos: 0 });
        }
        return [...subscribers.values()].every((got) =>
          NAMES.every((name) => got.some((m) => m.topic === `${topic}/probe/${name}`)),
        );
      },
      { what: 'probes from every bridge to every subscriber', intervalMs: 200 },
    );

    const perQos = 50;
    await Promise.all(
      [...publishers].map(async ([name, publisher]) => {
        for (const qos of [0, 1, 2] as const) {
          for (let index = 0; index < perQos; index++) {
            await publisher.publishAsync(`${topic}/${name}/q${qos}`, `${name}-${qos}-${index}`, {
              qos,
            });
          }
        }
      }),
    );
    const real = (got: Got[]) => got.filter((m) => !m.topic.includes('/probe/'));
    await waitFor(
      () => [...subscribers.values()].every((got) => real(got).length >= 3 * 3 * perQos),
      { what: 'every message at every subscriber', timeoutMs: 30_000 },
    ).catch(() => undefined);
    for (const [subscriber, got] of subscribers) {
      for (const publisher of NAMES) {
        for (const qos of [0, 1, 2]) {
          const of = real(got).filter((m) => m.topic === `${topic}/${publisher}/q${qos}`);
          const what = `${publisher} → ${subscriber} at QoS ${qos}`;
          // no loss, no duplicate, in order — at QoS 0 too, on a fleet that is not overloaded
          expect(
            of.map((m) => m.payload),
            what,
          ).toEqual(range(perQos, (index) => `${publisher}-${qos}-${index}`));
          expect(new Set(of.map((m) => m.qos)), what).toEqual(new Set([qos]));
        }
      }
    }
  });

  it('shared subscriptions ($share and $queue) spread over members on every bridge: each message to one member', async () => {
    const { haproxy } = fleet;
    const id = uniqueId();
    const topic = `jobs/${id}`;
    const members = new Map<Name, Got[]>();
    for (const name of NAMES) {
      const client = await connectTo(haproxy, name, {
        clientId: `member-${name}-${id}`,
        protocolVersion: 5,
      });
      members.set(name, inbox(client));
      await client.subscribeAsync(`$share/g${id}/${topic}/share/#`, { qos: 1 });
      await client.subscribeAsync(`$queue/${topic}/queue/#`, { qos: 1 });
    }
    const publishers = new Map<Name, MqttClient>();
    for (const name of NAMES) {
      publishers.set(name, await connectTo(haproxy, name, { clientId: `jobs-${name}-${id}` }));
    }
    // every bridge routes to every member: a warm-up from each bridge reached each member
    await waitFor(
      async () => {
        for (const [name, publisher] of publishers) {
          await publisher.publishAsync(`${topic}/share/warmup`, `warmup-${name}`, { qos: 1 });
          await publisher.publishAsync(`${topic}/queue/warmup`, `warmup-${name}`, { qos: 1 });
        }
        return [...members.values()].every((got) =>
          NAMES.every((name) =>
            ['share', 'queue'].every((kind) =>
              got.some((m) => m.topic === `${topic}/${kind}/warmup` && m.payload.endsWith(name)),
            ),
          ),
        );
      },
      { what: 'warm-ups from every bridge at every member', intervalMs: 100 },
    );
    const perPublisher = 60;
    await Promise.all(
      [...publishers].map(async ([name, publisher]) => {
        for (let index = 0; index < perPublisher; index++) {
          await publisher.publishAsync(`${topic}/share/job`, `s-${name}-${index}`, { qos: 1 });
          await publisher.publishAsync(`${topic}/queue/job`, `q-${name}-${index}`, { qos: 1 });
        }
      }),
    );
    const jobs = (kind: string, got: Got[]) =>
      got.filter((m) => m.topic === `${topic}/${kind}/job`).map((m) => m.payload);
    const all = (kind: string) => [...members.values()].flatMap((got) => jobs(kind, got));
    const expected = (prefix: string) =>
      NAMES.flatMap((name) => range(perPublisher, (index) => `${prefix}-${name}-${index}`)).sort();
    await waitFor(
      () => all('share').length >= 3 * perPublisher && all('queue').length >= 3 * perPublisher,
      { what: 'every job delivered', timeoutMs: 30_000 },
    ).catch(() => undefined);
    for (const kind of ['share', 'queue']) {
      expect(all(kind).sort(), kind).toEqual(expected(kind.slice(0, 1)));
      for (const publisher of NAMES) {
        // the jobs published on one bridge went to members on every bridge
        const receivers = NAMES.filter((member) =>
          jobs(kind, members.get(member) ?? []).some((job) =>
            job.startsWith(`${kind.slice(0, 1)}-${publisher}-`),
          ),
        );
        expect(receivers, `${kind} jobs of ${publisher}`).toEqual([...NAMES]);
      }
    }
  });

  it('one client id connecting to two bridges at the same moment: both accepted, the later takes over, none refused', async () => {
    // the two claims race in the sessions topic (the same epoch): the one that loses claims
    // again rather than refusing a client that is there (a reconnect racing the adoption of a
    // stopped bridge's sessions is the same race)
    const id = uniqueId();
    const pairs = range(10, (index) => `twin-${index}-${id}`);
    const outcomes = await Promise.all(
      pairs.map(async (clientId) => {
        const [onA, onB] = await Promise.all([
          RawClient.connect(fleet.bridges.a.mqttPort),
          RawClient.connect(fleet.bridges.b.mqttPort),
        ]);
        const connect = { clientId, ...persistent };
        const [ackA, ackB] = await Promise.all([onA.handshake(connect), onB.handshake(connect)]);
        return { clientId, clients: [onA, onB], codes: [ackA.reasonCode, ackB.reasonCode] };
      }),
    );
    const refused = outcomes.filter(({ codes }) => codes.some((code) => code !== 0));
    expect(refused.map(({ clientId, codes }) => `${clientId}: ${codes.join(', ')}`)).toEqual([]);
    for (const { clientId, clients } of outcomes) {
      // exactly one of the two is left, the other was told 0x8E
      await waitFor(() => clients.filter((client) => client.closed).length === 1, {
        what: `one connection of ${clientId} closed`,
      });
      const closed = clients.find((client) => client.closed);
      expect(closed?.packets.find((packet) => packet.cmd === 'disconnect')).toMatchObject({
        reasonCode: 0x8e,
      });
    }
  });

  it('a session moving to another bridge keeps its QoS 2 packet ids (a retransmission is produced once) and sends a will without delay once', async () => {
    const id = uniqueId();
    const clientId = `qos2-mover-${id}`;
    const willTopic = `moved-will/${id}`;
    const watcher = await connectClient(fleet.bridges.c.mqttPort, { clientId: `w-${id}` });
    const wills = inbox(watcher);
    await watcher.subscribeAsync(willTopic, { qos: 1 });
    const connect = {
      clientId,
      ...persistent,
      will: { topic: willTopic, payload: Buffer.from('gone'), qos: 1 as const, retain: false },
    };
    const publish = {
      cmd: 'publish' as const,
      topic: `up/${clientId}/data`,
      payload: Buffer.from('exactly-once'),
      qos: 2 as const,
      dup: false,
      retain: false,
      messageId: 42,
    };
    const onA = await RawClient.connect(fleet.bridges.a.mqttPort);
    await onA.handshake(connect);
    onA.send(publish, 5);
    expect((await onA.next('pubrec')).messageId).toBe(42);

    // the client turns up on b before PUBREL: its session, with packet id 42 received, moves
    const onB = await RawClient.connect(fleet.bridges.b.mqttPort);
    expect((await onB.handshake(connect)).sessionPresent).toBe(true);
    expect((await onA.next('disconnect')).reasonCode).toBe(0x8e);
    onB.send({ ...publish, dup: true }, 5);
    expect((await onB.next('pubrec')).messageId).toBe(42);
    onB.send({ cmd: 'pubrel', messageId: 42 }, 5);
    expect((await onB.next('pubcomp')).messageId).toBe(42);
    const records = await readAllRecords(kafkaBrokers(), fleet.uplinkTopic);
    expect(records.filter((record) => record.key === clientId)).toHaveLength(1);

    // the old connection was closed by the takeover: its will (no delay) went out, once
    await waitFor(() => wills.length > 0, { what: 'the will of the taken-over connection' });
    await watcher.publishAsync(willTopic, 'marker', { qos: 1 });
    await waitFor(() => wills.some((m) => m.payload === 'marker'), { what: 'the marker' });
    expect(wills.map((m) => m.payload)).toEqual(['gone', 'marker']);
  });

  it("a clean start over a kept session: the new session is the fleet's (a publish on another bridge reaches it)", async () => {
    const id = uniqueId();
    const clientId = `clean-${id}`;
    const old = await connectClient(fleet.bridges.a.mqttPort, { clientId, ...persistent });
    await old.subscribeAsync(`old/${id}`, { qos: 1 });
    await old.endAsync();
    let got: Got[] = [];
    const fresh = await connectClient(
      fleet.bridges.a.mqttPort,
      { clientId, ...persistent, clean: true },
      (client) => (got = inbox(client)),
    );
    await fresh.subscribeAsync(`new/${id}`, { qos: 1 });
    const publisher = await connectClient(fleet.bridges.b.mqttPort, { clientId: `cp-${id}` });
    await waitFor(
      async () => {
        await publisher.publishAsync(`new/${id}`, 'probe', { qos: 1 });
        return got.length > 0;
      },
      { what: 'a publish on b to the new session on a', intervalMs: 200, timeoutMs: 10_000 },
    );
  });

  it('an offline backlog (4,500 commands for 30 offline sessions) does not hold back commands for online devices', async () => {
    const { haproxy } = fleet;
    const id = uniqueId();
    const sleepers = range(30, (index) => `sleeper-${index}-${id}`);
    const awake = range(9, (index) => `awake-${index}-${id}`);
    const got = new Map<string, Got[]>();
    const clients = new Map<string, MqttClient>();
    await Promise.all(
      [...sleepers, ...awake].map(async (device) => {
        const client = await connectClient(haproxy.port, {
          ...persistent,
          clientId: device,
          // few in flight: a session resuming with a backlog is fed in steps
          properties: { ...persistent.properties, receiveMaximum: 10 },
        });
        got.set(device, inbox(client));
        clients.set(device, client);
        await client.subscribeAsync(`devices/${device}/cmd`, { qos: 1 });
      }),
    );
    await untilCommandsRouted(fleet, got);
    for (const device of sleepers) await clients.get(device)?.endAsync();

    const producer = await connectedProducer();
    const backlog = 150;
    for (let from = 0; from < backlog; from += 50) {
      await producer.send({
        topic: fleet.commandsTopic,
        messages: range(50, (index) => `b-${from + index}`).flatMap((value) =>
          sleepers.map((device) => ({ key: device, value })),
        ),
      });
    }
    const started = Date.now();
    await producer.send({
      topic: fleet.commandsTopic,
      messages: range(50, (index) => `c-${index}`).flatMap((value) =>
        awake.map((device) => ({ key: device, value })),
      ),
    });
    const commands = (device: string, prefix: string) =>
      (got.get(device) ?? []).map((m) => m.payload).filter((value) => value.startsWith(prefix));
    await waitFor(() => awake.every((device) => commands(device, 'c-').length >= 50), {
      what: 'the online devices to get their 50 commands behind the backlog',
      timeoutMs: 30_000,
    }).catch(() => undefined);
    const onlineMs = Date.now() - started;
    for (const device of awake) {
      expect(firsts(commands(device, 'c-')).order, device).toEqual(
        range(50, (index) => `c-${index}`),
      );
    }

    // the backlog was kept: the sleepers come back (anywhere) and get it all, in order
    const back = new Map<string, Got[]>();
    await Promise.all(
      sleepers.map(async (device) => {
        let list: Got[] = [];
        const acks: IConnackPacket[] = [];
        await connectClient(
          haproxy.port,
          {
            ...persistent,
            clientId: device,
            properties: { ...persistent.properties, receiveMaximum: 10 },
          },
          (client) => {
            list = inbox(client);
            client.on('connect', (connack) => acks.push(connack));
          },
        );
        expect(acks[0]?.sessionPresent, device).toBe(true);
        back.set(device, list);
      }),
    );
    const backlogOf = (device: string) =>
      (back.get(device) ?? []).map((m) => m.payload).filter((value) => value.startsWith('b-'));
    await waitFor(() => sleepers.every((device) => new Set(backlogOf(device)).size >= backlog), {
      what: 'every backlog delivered',
      timeoutMs: 60_000,
    }).catch(() => undefined);
    for (const device of sleepers) {
      expect(firsts(backlogOf(device)).order, device).toEqual(
        range(backlog, (index) => `b-${index}`),
      );
    }
    console.log(
      `[fleet-haproxy] online commands behind a backlog of ${backlog * sleepers.length}: ${onlineMs} ms`,
    );
  }, 120_000);
});

describe.skipIf(!HAPROXY_INSTALLED)(
  `three bridges behind HAProxy: restarts and crashes${SKIPPED}`,
  () => {
    it('downlink, 100 devices × 100 commands spread over the bridges: all delivered in order while one bridge restarts', async () => {
      const fleet = await startFleet();
      const { haproxy } = fleet;
      const id = uniqueId();
      const devices = range(100, (index) => `dev-${index}-${id}`);
      const got = new Map<string, Got[]>();
      const servers = new Map<string, string>();
      const clients = new Map<string, MqttClient>();
      /** The CONNACKs after the first. */
      const reconnects = new Map<string, IConnackPacket[]>();
      for (const device of devices) {
        const client = await connectClient(haproxy.port, { ...reconnecting, clientId: device });
        client.on('error', () => undefined);
        got.set(device, inbox(client));
        reconnects.set(device, connacks(client));
        clients.set(device, client);
        servers.set(device, await serverOf(haproxy, client));
      }
      await Promise.all(
        [...clients].map(([device, client]) =>
          client.subscribeAsync(`devices/${device}/cmd`, { qos: 1 }),
        ),
      );
      for (const name of NAMES) {
        expect([...servers.values()].filter((server) => server === name).length).toBeGreaterThan(
          30,
        );
      }
      await untilCommandsRouted(fleet, got);

      const producer = await connectedProducer();
      const round = (index: number) =>
        producer.send({
          topic: fleet.commandsTopic,
          messages: devices.map((device) => ({ key: device, value: `cmd-${index}` })),
        });
      const commands = (device: string) =>
        (got.get(device) ?? []).map((m) => m.payload).filter((value) => value.startsWith('cmd-'));
      for (let index = 0; index < 30; index++) await round(index);
      await waitFor(() => devices.every((device) => commands(device).length >= 5), {
        what: 'commands flowing to every device',
        timeoutMs: 30_000,
      });

      // b restarts (SIGTERM, then again on its port) while the other 70 rounds are produced,
      // one every 80 ms: commands for b's devices keep coming while it shuts down
      const restarted = devices.filter((device) => servers.get(device) === 'b');
      let produced = 30;
      const producing = (async () => {
        for (; produced < 100; produced++) {
          await Promise.all([round(produced), new Promise((resolve) => setTimeout(resolve, 80))]);
        }
      })();
      await waitFor(() => produced >= 40, { what: 'ten more rounds' });
      // once b is stopping it no longer reads PUBACKs: what it sent its devices from then on
      // (until their DISCONNECT 0x8B) would all come again from the bridge they move to
      const stopping = waitFor(
        () => fleet.bridges.b.logLines().some((line) => line.msg === 'stopping'),
        { intervalMs: 10, what: 'b stopping' },
      ).then(() => new Map(restarted.map((device) => [device, got.get(device)?.length ?? 0])));
      let sentWhileStopping = 0;
      for (const device of restarted) {
        clients.get(device)?.once('disconnect', () => {
          const now = got.get(device)?.length ?? 0;
          void stopping.then((at) => (sentWhileStopping += now - (at.get(device) ?? now)));
        });
      }
      fleet.bridges.b.signal('SIGTERM');
      const exit = await fleet.bridges.b.exited;
      expect(exit.code).toBe(0);
      await fleet.start('b');
      await haproxy.waitForServers('UP', ['b']);
      await producing;
      await waitFor(() => devices.every((device) => new Set(commands(device)).size >= 100), {
        what: 'every command delivered',
        timeoutMs: 60_000,
        intervalMs: 200,
      }).catch(() => undefined);

      const repeats = { moved: 0, stayed: 0, dup: 0 };
      for (const device of devices) {
        const received = firsts(commands(device));
        repeats[servers.get(device) === 'b' ? 'moved' : 'stayed'] += received.repeats;
        const seen = new Set<string>();
        for (const { payload, dup } of got.get(device) ?? []) {
          if (payload.startsWith('cmd-') && seen.has(payload) && dup) repeats.dup++;
          seen.add(payload);
        }
        expect(received.order, device).toEqual(range(100, (index) => `cmd-${index}`));
      }
      // the devices of b were moved: disconnected, and back through HAProxy to their sessions
      for (const device of restarted) {
        expect(clients.get(device)?.connected, device).toBe(true);
        expect(
          reconnects.get(device)?.map((connack) => connack.sessionPresent),
          device,
        ).toEqual([true]);
      }
      expect(restarted.length).toBeGreaterThan(30);
      // no more than what was on its way when b stopped reading
      expect(sentWhileStopping).toBeLessThan(restarted.length * 3);
      console.log(
        `[fleet-haproxy] downlink 100×100 across a restart of b: repeated deliveries (QoS 1) ` +
          `${repeats.moved} to b's ${restarted.length} devices, ${repeats.stayed} to the others, ` +
          `${repeats.dup} of them with DUP; ${sentWhileStopping} sent by b while stopping; ` +
          `exit ${exit.code}`,
      );
    }, 150_000);

    it('kill -9 of one bridge under QoS 1 uplink load: devices reconnect through HAProxy, nothing acknowledged lost, sessions resumed with their queues', async () => {
      const fleet = await startFleet();
      const { haproxy } = fleet;
      const id = uniqueId();
      const publisher = await connectTo(haproxy, 'a', { clientId: `kill-pub-${id}` });
      publisher.on('error', () => undefined);

      // sleepers: persistent sessions on every bridge, offline, with messages waiting
      const sleepers = range(24, (index) => `kill-sleeper-${index}-${id}`);
      const sleeperServers = new Map<string, string>();
      for (const device of sleepers) {
        const client = await connectClient(haproxy.port, { ...persistent, clientId: device });
        const list = inbox(client);
        sleeperServers.set(device, await serverOf(haproxy, client));
        await client.subscribeAsync(`devices/${device}/cmd`, { qos: 1 });
        await waitFor(
          async () => {
            await publisher.publishAsync(`devices/${device}/cmd`, 'hello', { qos: 1 });
            return list.length > 0;
          },
          { what: `a first message to ${device}`, intervalMs: 200 },
        );
        await client.endAsync();
      }
      for (let index = 0; index < 20; index++) {
        for (const device of sleepers) {
          await publisher.publishAsync(`devices/${device}/cmd`, `q-${index}`, { qos: 1 });
        }
      }

      // streamers: QoS 1 uplink load, persistent sessions with a subscription of their own
      const streamers = await Promise.all(
        range(12, (index) => `kill-streamer-${index}-${id}`).map((clientId) =>
          new StreamDevice({
            port: haproxy.port,
            clientId,
            topic: `up/${clientId}/data`,
            protocolVersion: 5,
            mqtt: { ...reconnecting, reconnectPeriod: 300, keepalive: 30 },
          }).connected(),
        ),
      );
      const streamerGot = new Map<string, Got[]>();
      const streamerServers = new Map<string, string>();
      for (const streamer of streamers) {
        streamerGot.set(streamer.clientId, inbox(streamer.client));
        streamerServers.set(streamer.clientId, await serverOf(haproxy, streamer.client));
        await streamer.client.subscribeAsync(`devices/${streamer.clientId}/cmd`, { qos: 1 });
      }
      try {
        const perDevice = 1_500;
        for (const streamer of streamers) {
          streamer.stream({ intervalMs: 10, window: 100, perTick: 10, max: perDevice });
        }
        const acked = () => streamers.reduce((sum, streamer) => sum + streamer.acked.size, 0);
        await waitFor(() => acked() >= 3_000, { what: 'load to flow', timeoutMs: 30_000 });

        fleet.bridges.b.signal('SIGKILL');
        const killed = await fleet.bridges.b.exited;
        const ackedAtKill = acked();
        await haproxy.waitForServers('DOWN', ['b']);
        // messages for every session while b is dead, b's sessions too
        for (const device of [...sleepers, ...streamers.map((streamer) => streamer.clientId)]) {
          for (let index = 0; index < 5; index++) {
            await publisher.publishAsync(`devices/${device}/cmd`, `k-${index}`, { qos: 1 });
          }
        }
        await waitFor(() => streamers.every((streamer) => streamer.sent >= perDevice), {
          what: 'the devices to send everything',
          timeoutMs: 60_000,
          intervalMs: 100,
        }).catch(() => undefined);
        await Promise.allSettled(streamers.map((streamer) => streamer.settled(30_000)));
        const records = await readAllRecords(kafkaBrokers(), fleet.uplinkTopic);
        const report = checkStreams(streamers, records);
        const onB = streamers.filter((streamer) => streamerServers.get(streamer.clientId) === 'b');
        console.log(
          reportLine('fleet kill -9 of b', report, {
            ackedAtKill,
            streamersOnB: onB.length,
            sleepersOnB: sleepers.filter((device) => sleeperServers.get(device) === 'b').length,
            reconnects: onB.reduce((sum, streamer) => sum + streamer.closes, 0),
          }),
        );
        expect(killed.signal).toBe('SIGKILL');
        expect({
          lostAcked: report.lostAcked,
          unexplainedDuplicates: report.unexplainedDuplicates,
          orderViolations: report.orderViolations,
          foreign: report.foreign,
          failed: report.failed,
          unanswered: report.unanswered,
          sent: report.sent,
        }).toEqual({
          lostAcked: 0,
          unexplainedDuplicates: 0,
          orderViolations: 0,
          foreign: 0,
          failed: 0,
          unanswered: 0,
          sent: perDevice * streamers.length,
        });
        // b's streamers were cut off and came back through HAProxy, on a and c
        expect(onB.length).toBeGreaterThan(0);
        for (const streamer of onB) {
          expect(streamer.closes, streamer.clientId).toBeGreaterThan(0);
          expect(streamer.client.connected, streamer.clientId).toBe(true);
          expect(await serverOf(haproxy, streamer.client)).not.toBe('b');
        }
        // every streamer's session kept its subscription: the commands sent meanwhile arrived
        await waitFor(
          () =>
            streamers.every(
              (streamer) =>
                (streamerGot.get(streamer.clientId) ?? []).filter((m) => m.payload.startsWith('k-'))
                  .length >= 5,
            ),
          { what: 'the commands for the streamers', timeoutMs: 30_000 },
        ).catch(() => undefined);
        for (const streamer of streamers) {
          const values = (streamerGot.get(streamer.clientId) ?? []).map((m) => m.payload);
          expect(firsts(values).order, streamer.clientId).toEqual(range(5, (i) => `k-${i}`));
        }

        // the sleepers come back through HAProxy (not to b): sessions present, queues in order
        const back = new Map<string, Got[]>();
        await Promise.all(
          sleepers.map(async (device) => {
            let list: Got[] = [];
            let acks: IConnackPacket[] = [];
            await connectClient(haproxy.port, { ...persistent, clientId: device }, (client) => {
              list = inbox(client);
              acks = connacks(client);
            });
            expect(acks[0]?.sessionPresent, device).toBe(true);
            back.set(device, list);
          }),
        );
        const expected = [...range(20, (i) => `q-${i}`), ...range(5, (i) => `k-${i}`)];
        await waitFor(
          () =>
            sleepers.every(
              (device) =>
                new Set(
                  back
                    .get(device)
                    ?.map((m) => m.payload)
                    .filter((v) => v !== 'hello'),
                ).size >= 25,
            ),
          { what: "the sleepers' queues", timeoutMs: 30_000 },
        ).catch(() => undefined);
        for (const device of sleepers) {
          // (a probe sent again before the first one arrived may come too)
          const values = (back.get(device) ?? [])
            .map((m) => m.payload)
            .filter((v) => v !== 'hello');
          expect(firsts(values).order, `${device} (was on ${sleeperServers.get(device)})`).toEqual(
            expected,
          );
        }
      } finally {
        await Promise.all(streamers.map((streamer) => streamer.end()));
      }
    }, 150_000);

    it('the whole fleet stopped (SIGTERM) and started again keeps every session: subscriptions, queues, QoS', async () => {
      const fleet = await startFleet();
      const { haproxy } = fleet;
      const id = uniqueId();
      const publisher = await connectClient(haproxy.port, { clientId: `stop-pub-${id}` });
      const devices = range(24, (index) => `keep-${index}-${id}`);
      const staying = new Set(devices.slice(0, 8));
      const servers = new Map<string, string>();
      const stayingClients = new Map<
        string,
        { client: MqttClient; got: Got[]; acks: IConnackPacket[] }
      >();
      for (const device of devices) {
        const options = staying.has(device) ? reconnecting : persistent;
        const client = await connectClient(haproxy.port, { ...options, clientId: device });
        client.on('error', () => undefined);
        const got = inbox(client);
        const acks = connacks(client); // the CONNACKs after the first
        servers.set(device, await serverOf(haproxy, client));
        await client.subscribeAsync(`devices/${device}/cmd`, { qos: 1 });
        await client.subscribeAsync(`devices/${device}/q2`, { qos: 2 });
        await waitFor(
          async () => {
            await publisher.publishAsync(`devices/${device}/cmd`, 'hello', { qos: 1 });
            return got.length > 0;
          },
          { what: `a first message to ${device}`, intervalMs: 200 },
        );
        if (staying.has(device)) stayingClients.set(device, { client, got, acks });
        else await client.endAsync();
      }
      const away = devices.filter((device) => !staying.has(device));
      for (const device of away) {
        for (let index = 0; index < 10; index++) {
          await publisher.publishAsync(`devices/${device}/cmd`, `one-${index}`, { qos: 1 });
        }
        for (let index = 0; index < 3; index++) {
          await publisher.publishAsync(`devices/${device}/q2`, `two-${index}`, { qos: 2 });
        }
      }
      await publisher.endAsync();

      for (const name of NAMES) fleet.bridges[name].signal('SIGTERM');
      const exits = await Promise.all(NAMES.map((name) => fleet.bridges[name].exited));
      expect(exits.map((exit) => exit.code)).toEqual([0, 0, 0]);
      await fleet.start('a');
      await Promise.all([fleet.start('b'), fleet.start('c')]);
      await haproxy.waitForServers('UP');

      // the devices that were connected come back on their own (MQTT.js reconnects), sessions present
      await waitFor(
        () =>
          [...stayingClients.values()].every(
            ({ acks, client }) => acks.length >= 1 && client.connected,
          ),
        { what: 'the connected devices to reconnect', timeoutMs: 30_000 },
      );
      for (const [device, { acks }] of stayingClients) {
        expect(acks.at(-1)?.sessionPresent, device).toBe(true);
      }
      // the others come back and get what waited for them, in order, at its QoS
      const back = new Map<string, Got[]>();
      await Promise.all(
        away.map(async (device) => {
          let got: Got[] = [];
          let acks: IConnackPacket[] = [];
          await connectClient(haproxy.port, { ...persistent, clientId: device }, (client) => {
            got = inbox(client);
            acks = connacks(client);
          });
          expect(acks[0]?.sessionPresent, device).toBe(true);
          back.set(device, got);
        }),
      );
      const queued = (got: Got[]) => got.filter((m) => m.payload !== 'hello');
      await waitFor(() => away.every((device) => queued(back.get(device) ?? []).length >= 13), {
        what: 'the queued messages',
        timeoutMs: 30_000,
      }).catch(() => undefined);
      for (const device of away) {
        const got = back.get(device) ?? [];
        const of = (suffix: string) =>
          queued(got)
            .filter((m) => m.topic.endsWith(suffix))
            .map((m) => [m.payload, m.qos]);
        expect(of('/cmd'), device).toEqual(range(10, (index) => [`one-${index}`, 1]));
        expect(of('/q2'), device).toEqual(range(3, (index) => [`two-${index}`, 2]));
      }
      // and every subscription is still there: a new message reaches every device
      for (const [device, { got }] of stayingClients) back.set(device, got);
      const after = await connectClient(haproxy.port, { clientId: `stop-pub2-${id}` });
      for (const device of devices) {
        await after.publishAsync(`devices/${device}/cmd`, 'after', { qos: 1 });
      }
      await waitFor(
        () => devices.every((device) => back.get(device)?.some((m) => m.payload === 'after')),
        { what: "'after' at every device", timeoutMs: 15_000 },
      ).catch(() => undefined);
      expect(
        devices.filter((device) => !back.get(device)?.some((m) => m.payload === 'after')),
      ).toEqual([]);
    }, 120_000);
  },
);

import type { Admin, Producer } from 'kafkajs';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { BridgeProcess } from '../support/bridge-process.js';
import {
  connectedProducer,
  createTopic,
  kafkaBrokers,
  kafkaClient,
  uniqueId,
} from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

let producer: Producer;
let admin: Admin;

beforeAll(async () => {
  producer = await connectedProducer();
  admin = kafkaClient().admin();
  await admin.connect();
});

afterAll(async () => {
  await producer.disconnect();
  await admin.disconnect();
});

function rules(topic: string): string {
  return `
downlink:
  - name: cluster-commands
    from: ${topic}
    to: { topic: 'devices/{key}/commands', qos: 1 }
`;
}

/** Devices whose commands are numbered 0, 1, 2…: what each received, in arrival order. */
class Fleet {
  readonly received = new Map<string, number[]>();

  constructor(
    readonly prefix: string,
    count: number,
  ) {
    for (let index = 0; index < count; index++) this.received.set(`${prefix}-${index}`, []);
  }

  get ids(): string[] {
    return [...this.received.keys()];
  }

  /** Connects every device to `bridge` with a persistent session and subscribes its commands. */
  async connect(bridge: Pick<RunningBridge, 'mqttPort'>, ids = this.ids): Promise<MqttClient[]> {
    return Promise.all(
      ids.map(async (clientId) => {
        const client = await connectClient(
          bridge.mqttPort,
          {
            clientId,
            protocolVersion: 5,
            clean: false,
            properties: { sessionExpiryInterval: 300 },
          },
          (device) =>
            device.on('message', (_topic, payload) => {
              this.received.get(clientId)?.push(Number(payload.toString()));
            }),
        );
        await client.subscribeAsync(`devices/${clientId}/commands`, { qos: 1 });
        return client;
      }),
    );
  }

  /** Whether every device has commands 0..count-1 at least once. */
  hasAll(count: number): boolean {
    return [...this.received.values()].every((numbers) => new Set(numbers).size >= count);
  }

  /**
   * Each device's commands, first arrivals only: at least once allows a repeat (a
   * command delivered but not yet committed when its bridge stopped), not a gap or a
   * command overtaking an earlier one.
   */
  firstArrivals(): number[][] {
    return [...this.received.values()].map((numbers) => [...new Set(numbers)]);
  }
}

/** Writes command `sequence` for every device (keyed by client id). */
async function writeRound(topic: string, ids: string[], sequence: number): Promise<void> {
  await producer.send({
    topic,
    messages: ids.map((key) => ({ key, value: String(sequence) })),
  });
}

/** Writes rounds `from` to `to` - 1, one every `intervalMs`, while the test goes on. */
class RoundWriter {
  written = 0;
  readonly done: Promise<void>;

  constructor(topic: string, ids: string[], from: number, to: number, intervalMs: number) {
    this.written = from;
    this.done = (async () => {
      for (; this.written < to; this.written++) {
        await writeRound(topic, ids, this.written);
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    })();
  }
}

async function members(groupId: string): Promise<number> {
  const { groups } = await admin.describeGroups([groupId]);
  const group = groups[0];
  return group?.state === 'Stable' ? group.members.length : -1;
}

describe('downlink with several bridges', () => {
  it('a bridge joining the group stands by, and takes over from the committed offsets when the first leaves: no command lost or reordered', async () => {
    const topic = await createTopic('dl-takeover', 3);
    const groupId = `takeover-${uniqueId()}`;
    const fleet = new Fleet('takeover', 20);
    const first = await startBridge(rules(topic), { downlink: { groupId } });
    onTestFinished(() => first.stop());
    await fleet.connect(first);
    await waitFor(async () => (await members(groupId)) === 1);
    for (let sequence = 0; sequence < 10; sequence++) await writeRound(topic, fleet.ids, sequence);
    await waitFor(() => fleet.hasAll(10));

    // the takeover waits 5 s for the devices of the bridge that left
    const second = await startBridge(rules(topic), {
      downlink: { groupId, startDelayMs: 5_000 },
    });
    onTestFinished(() => second.stop());
    await waitFor(async () => (await members(groupId)) === 2, { timeoutMs: 30_000 });
    expect(await first.metric('bridge_downlink_assigned_partitions')).toBe(3);
    expect(await second.metric('bridge_downlink_assigned_partitions')).toBe(0);
    for (let sequence = 10; sequence < 20; sequence++) await writeRound(topic, fleet.ids, sequence);
    await waitFor(() => fleet.hasAll(20));

    // commands keep coming while the first bridge stops and its devices move to the second
    const writer = new RoundWriter(topic, fleet.ids, 20, 60, 25);
    await waitFor(() => writer.written >= 30);
    await first.stop();
    await fleet.connect(second);
    await writer.done;
    await waitFor(() => fleet.hasAll(60), { timeoutMs: 60_000 });
    expect(await second.metric('bridge_downlink_assigned_partitions')).toBe(3);
    const expected = Array.from({ length: 60 }, (_, index) => index);
    for (const numbers of fleet.firstArrivals()) expect(numbers).toEqual(expected);
  });

  it('a standby takes over when the consuming bridge is killed (after downlink.sessionTimeoutMs): no command lost or reordered', async () => {
    const topic = await createTopic('dl-crash', 3);
    const groupId = `crash-${uniqueId()}`;
    const fleet = new Fleet(`crash-${uniqueId()}`, 10);
    const first = await BridgeProcess.start({
      brokers: kafkaBrokers().join(','),
      mappings: rules(topic),
      env: {
        BRIDGE_DOWNLINK_GROUP_ID: groupId,
        BRIDGE_DOWNLINK_START_DELAY_MS: '0',
        BRIDGE_DOWNLINK_SESSION_TIMEOUT_MS: '10000',
      },
    });
    const devices = await fleet.connect({ mqttPort: first.mqttPort });
    await waitFor(async () => (await members(groupId)) === 1);
    const second = await startBridge(rules(topic), { downlink: { groupId, startDelayMs: 3_000 } });
    onTestFinished(() => second.stop());
    await waitFor(async () => (await members(groupId)) === 2, { timeoutMs: 30_000 });
    for (let sequence = 0; sequence < 10; sequence++) await writeRound(topic, fleet.ids, sequence);
    await waitFor(() => fleet.hasAll(10));

    const writer = new RoundWriter(topic, fleet.ids, 10, 40, 50);
    await waitFor(() => writer.written >= 20);
    first.signal('SIGKILL');
    await first.exited;
    await Promise.all(devices.map((device) => device.endAsync(true)));
    await fleet.connect(second);
    await writer.done;
    // the killed member leaves the group when its Kafka session (10 s) times out
    await waitFor(() => fleet.hasAll(40), { timeoutMs: 80_000 });
    expect(await second.metric('bridge_downlink_assigned_partitions')).toBe(3);
    const expected = Array.from({ length: 40 }, (_, index) => index);
    for (const numbers of fleet.firstArrivals()) expect(numbers).toEqual(expected);
  }, 120_000);

  it('bridges with their own downlink.instanceId each read every partition and deliver to the devices connected to them', async () => {
    const topic = await createTopic('dl-instances', 3);
    const groupId = `instances-${uniqueId()}`;
    const fleets = [new Fleet('instance-a', 10), new Fleet('instance-b', 10)];
    const bridges = await Promise.all(
      ['a', 'b'].map((instanceId) =>
        startBridge(rules(topic), { downlink: { groupId, instanceId } }),
      ),
    );
    for (const bridge of bridges) onTestFinished(() => bridge.stop());
    await Promise.all(fleets.map((fleet, index) => fleet.connect(bridges[index] as RunningBridge)));
    await waitFor(async () => (await members(`${groupId}.a`)) === 1);
    await waitFor(async () => (await members(`${groupId}.b`)) === 1);

    const ids = fleets.flatMap((fleet) => fleet.ids);
    for (let sequence = 0; sequence < 20; sequence++) await writeRound(topic, ids, sequence);
    await waitFor(() => fleets.every((fleet) => fleet.hasAll(20)));
    const expected = Array.from({ length: 20 }, (_, index) => index);
    for (const fleet of fleets) {
      for (const numbers of fleet.received.values()) expect(numbers).toEqual(expected);
    }
    // each bridge saw the other's commands too, and had no session for them
    for (const bridge of bridges) {
      expect(await bridge.metric('bridge_downlink_messages_without_session_total')).toBe(200);
    }
  });
});

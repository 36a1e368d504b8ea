import type { EachMessagePayload, Kafka } from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { DownlinkConsumer } from '../../../src/downlink/downlink-consumer.js';
import type { BrokerMessage } from '../../../src/mqtt/message.js';
import { BridgeMetrics } from '../../../src/observability/metrics.js';
import { compileMappings } from '../../../src/rules/load.js';
import { waitFor } from '../../support/wait-for.js';

const GROUP_JOIN = 'consumer.group_join';
const CRASH = 'consumer.crash';

type JoinListener = (event: { payload: { memberAssignment: Record<string, number[]> } }) => void;
type CrashListener = (event: { payload: { error: Error; restart: boolean } }) => void;

/** The KafkaJS consumer surface DownlinkConsumer uses, driven by the test. */
class FakeConsumer {
  readonly events = { GROUP_JOIN, CRASH };
  readonly commits: Array<Array<{ topic: string; partition: number; offset: string }>> = [];
  heartbeats = 0;
  /** Thrown by the next heartbeat (a rebalance). */
  heartbeatError: Error | undefined;
  /** Topics paused and not resumed. */
  readonly paused = new Set<string>();
  eachMessage: ((payload: EachMessagePayload) => Promise<void>) | undefined;
  #joinListener: JoinListener | undefined;
  #crashListener: CrashListener | undefined;

  on(event: string, listener: JoinListener | CrashListener): void {
    if (event === GROUP_JOIN) this.#joinListener = listener as JoinListener;
    if (event === CRASH) this.#crashListener = listener as CrashListener;
  }

  crash(restart: boolean): void {
    this.#crashListener?.({ payload: { error: new Error('crashed'), restart } });
  }
  connect = (): Promise<void> => Promise.resolve();
  subscribe = (): Promise<void> => Promise.resolve();
  run = ({ eachMessage }: { eachMessage: FakeConsumer['eachMessage'] }): Promise<void> => {
    this.eachMessage = eachMessage;
    return Promise.resolve();
  };
  commitOffsets = (
    offsets: Array<{ topic: string; partition: number; offset: string }>,
  ): Promise<void> => {
    this.commits.push(offsets);
    return Promise.resolve();
  };
  stop = (): Promise<void> => Promise.resolve();
  pause = (topics: Array<{ topic: string }>): void => {
    for (const { topic } of topics) this.paused.add(topic);
  };
  resume = (topics: Array<{ topic: string }>): void => {
    for (const { topic } of topics) this.paused.delete(topic);
  };
  disconnect = (): Promise<void> => Promise.resolve();

  join(memberAssignment: Record<string, number[]>): void {
    this.#joinListener?.({ payload: { memberAssignment } });
  }

  async deliver(partition: number, offset: number): Promise<void> {
    await this.eachMessage?.({
      topic: 'cmds',
      partition,
      message: {
        key: Buffer.from('d1'),
        value: Buffer.from(`o${offset}`),
        offset: String(offset),
        timestamp: '0',
        attributes: 0,
        headers: {},
      },
      heartbeat: () => {
        this.heartbeats++;
        const error = this.heartbeatError;
        this.heartbeatError = undefined;
        return error ? Promise.reject(error) : Promise.resolve();
      },
      pause: () => () => undefined,
    });
  }
}

function setUp(
  options: {
    instanceId?: string;
    startDelayMs?: number;
    maxUnsettled?: number;
    downlinkRoom?: (topic: string, ms: number) => Promise<void> | undefined;
  } = {},
) {
  const consumer = new FakeConsumer();
  const groupIds: string[] = [];
  const kafka = {
    consumer: ({ groupId }: { groupId: string }) => {
      groupIds.push(groupId);
      return consumer;
    },
  } as unknown as Kafka;
  const { downlink } = compileMappings([
    {
      file: 'm.yaml',
      text: "downlink:\n  - name: c\n    from: cmds\n    to: { topic: 'devices/{key}/c' }\n",
    },
  ]);
  const delivered: string[] = [];
  const settles: Array<() => void> = [];
  const target = {
    publishDownlink(message: BrokerMessage, settle: () => void): number {
      delivered.push(message.payload.toString());
      settles.push(settle);
      return 1;
    },
    downlinkRoom: options.downlinkRoom,
  };
  const subject = new DownlinkConsumer(
    kafka,
    downlink,
    target,
    (_record, done) => {
      done();
    },
    {
      groupId: 'g',
      instanceId: options.instanceId ?? '',
      startDelayMs: options.startDelayMs ?? 0,
      sessionTimeoutMs: 30_000,
      maxUnsettled: options.maxUnsettled ?? 100,
      slowSubscriberWaitMs: 0,
      commitIntervalMs: 10,
    },
    pino({ level: 'silent' }),
    new BridgeMetrics(),
  );
  return { consumer, subject, delivered, settles, groupIds };
}

describe('DownlinkConsumer', () => {
  it('commits up to the oldest unsettled record, and skips records a rebalance brings again', async () => {
    const { consumer, subject, delivered, settles } = setUp();
    await subject.start();
    for (const offset of [0, 1, 2]) await consumer.deliver(0, offset);
    settles[0]?.();
    settles[1]?.();
    await waitFor(() => consumer.commits.flat().some((commit) => commit.offset === '2'));

    // same partition kept: KafkaJS fetches again from the committed offset 2
    consumer.join({ cmds: [0] });
    await consumer.deliver(0, 2);
    await consumer.deliver(0, 3);
    expect(delivered).toEqual(['o0', 'o1', 'o2', 'o3']);

    // the late settle of offset 2 still moves the commit on
    settles[2]?.();
    settles[3]?.();
    await waitFor(() => consumer.commits.flat().some((commit) => commit.offset === '4'));

    // partition lost, then given back after another member consumed it: nothing is skipped
    consumer.join({});
    consumer.join({ cmds: [0] });
    await consumer.deliver(0, 3);
    expect(delivered).toEqual(['o0', 'o1', 'o2', 'o3', 'o3']);
    await subject.stop();
  });

  it('appends the instance id to the group id', async () => {
    const { subject, groupIds } = setUp({ instanceId: 'bridge-2' });
    await subject.start();
    expect(groupIds).toEqual(['g.bridge-2']);
    await subject.stop();
  });

  it('consumes at once on the first join, and waits startDelayMs when it takes over from standby', async () => {
    const { consumer, subject } = setUp({ startDelayMs: 200 });
    await subject.start();
    consumer.join({ cmds: [0, 1] });
    expect(consumer.paused.size).toBe(0);

    consumer.join({ cmds: [0, 1] });
    expect(consumer.paused.size).toBe(0);

    // another bridge took the group, then left it
    consumer.join({});
    consumer.join({ cmds: [0, 1] });
    expect([...consumer.paused]).toEqual(['cmds']);
    // KafkaJS restarted the consumer (a new group state, unpaused) and it joined again
    consumer.paused.clear();
    consumer.join({ cmds: [0, 1] });
    expect([...consumer.paused]).toEqual(['cmds']);
    await waitFor(() => consumer.paused.size === 0);
    await subject.stop();
  });

  it('starts its consumer groups again 10 s after KafkaJS gave up on one', async () => {
    vi.useFakeTimers();
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { consumer, subject, groupIds } = setUp({ startDelayMs: 5_000 });
    await subject.start();
    consumer.crash(true); // KafkaJS restarts it itself
    await vi.advanceTimersByTimeAsync(10_000);
    expect(groupIds).toEqual(['g']);
    // two groups giving up at once start once
    consumer.crash(false);
    consumer.crash(false);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(groupIds).toEqual(['g', 'g']);
    // the bridge that consumed may have left meanwhile: what it gets now is a takeover
    consumer.join({ cmds: [0] });
    expect([...consumer.paused]).toEqual(['cmds']);
    await subject.stop();
  });

  it('heartbeats while it waits for records to settle, and lets a rebalance take the waiting record back', async () => {
    vi.useFakeTimers();
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { consumer, subject, delivered, settles } = setUp({ maxUnsettled: 2 });
    await subject.start();
    await consumer.deliver(0, 0);
    await consumer.deliver(0, 1);
    const waiting = consumer.deliver(0, 2);
    await vi.advanceTimersByTimeAsync(6_000);
    expect(consumer.heartbeats).toBe(2);
    expect(delivered).toEqual(['o0', 'o1']);
    settles[0]?.();
    await waiting;
    expect(delivered).toEqual(['o0', 'o1', 'o2']);

    consumer.heartbeatError = new Error('The group is rebalancing, so a rejoin is needed');
    const rebalanced = consumer.deliver(0, 3);
    const outcome = expect(rebalanced).rejects.toThrow('rebalancing');
    await vi.advanceTimersByTimeAsync(3_000);
    await outcome;
    expect(delivered).toEqual(['o0', 'o1', 'o2']);
    await subject.stop();
  });

  it('holds a record back while a subscriber of its topic has a full queue, heartbeating, and hands it over once there is room', async () => {
    let room: (() => void) | undefined;
    const asked: string[] = [];
    const { consumer, subject, delivered } = setUp({
      downlinkRoom: (topic) => {
        asked.push(topic);
        if (asked.length > 1) return undefined;
        return new Promise<void>((resolve) => {
          room = resolve;
        });
      },
    });
    await subject.start();
    const waiting = consumer.deliver(0, 0);
    await waitFor(() => room !== undefined);
    expect(delivered).toEqual([]);
    room?.();
    await waiting;
    expect(asked).toEqual(['devices/d1/c', 'devices/d1/c']);
    expect(consumer.heartbeats).toBe(1);
    expect(delivered).toEqual(['o0']);
    await subject.stop();
  });
});

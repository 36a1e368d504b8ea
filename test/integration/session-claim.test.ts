/**
 * A claim of a session (sessions.store kafka) takes over what the log held just before the
 * claim's record: a record of the other bridge that this bridge had not read when it wrote its
 * claim (a QoS 2 packet id saved as its client got PUBREC) is not lost.
 */
import '../../src/kafka/kafkajs-patches.js';
import { CompressionTypes, type ProducerBatch } from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { KafkaSessionStore } from '../../src/cluster/kafka-session-store.js';
import {
  encodeSessionState,
  ownershipHeaders,
  sessionKey,
  type SessionState,
} from '../../src/cluster/session-record.js';
import { chosenPartitioner } from '../../src/kafka/partition-choice.js';
import { PartitionCounts } from '../../src/kafka/partition-counts.js';
import { ProducerPipeline } from '../../src/kafka/producer-pipeline.js';
import { BridgeMetrics } from '../../src/observability/metrics.js';
import { connectedProducer, kafkaClient, uniqueId } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

const log = pino({ level: 'silent' });

/** A session of another bridge, as that bridge writes it. */
function sessionOf(qos2Received: number[]): SessionState {
  return {
    online: true,
    disconnectedAt: undefined,
    identity: { username: undefined, proof: 'none' },
    assignedId: false,
    expiryInterval: 3600,
    subscriptions: new Map(),
    will: undefined,
    willAt: undefined,
    qos2Received,
    mailbox: undefined,
  };
}

/** Whether a batch holds a record of the client id's session. */
function writesSession(batch: ProducerBatch, clientId: string): boolean {
  const key = sessionKey(clientId);
  return (batch.topicMessages ?? []).some(({ messages }) =>
    messages.some((message) => message.key?.toString() === key),
  );
}

/**
 * A session store of bridge-b whose writes of the client id's session are preceded, once, by
 * what `interpose` writes (as another bridge's record landing just before), and a producer of
 * another bridge, bridge-a, writing that client's session records (value undefined: its end).
 */
async function claimRace(instanceTimeoutMs = 30_000) {
  const id = uniqueId();
  const clientId = `moving-${id}`;
  const sessionsTopic = `sessions-claim-${id}`;
  const kafka = kafkaClient();
  const other = await connectedProducer();
  const record = (state: SessionState | undefined) => ({
    topic: sessionsTopic,
    messages: [
      {
        key: sessionKey(clientId),
        value: state === undefined ? null : encodeSessionState(state),
        headers: ownershipHeaders({ owner: 'bridge-a', epoch: 1 }),
      },
    ],
  });
  // before the claim goes out, the other bridge's next record lands (this bridge has not
  // read it yet: it is written on the way to Kafka of the claim that was computed without it)
  let interpose: (() => Promise<unknown>) | undefined;
  const interposed = () => interpose === undefined;
  const real = kafka.producer({ idempotent: true, createPartitioner: chosenPartitioner });
  await real.connect();
  onTestFinished(() => real.disconnect());
  const producer = new Proxy(real, {
    get(target, property, receiver) {
      if (property === 'sendBatch') {
        return async (batch: ProducerBatch) => {
          const before = interpose;
          if (before && writesSession(batch, clientId)) {
            interpose = undefined;
            await before();
          }
          return target.sendBatch(batch);
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value.bind(target) as unknown) : value;
    },
  });
  const admin = kafka.admin();
  await admin.connect();
  onTestFinished(() => admin.disconnect());
  const pipeline = new ProducerPipeline(
    producer,
    () => producer,
    new PartitionCounts(admin),
    {
      lingerMs: 0,
      batchMaxRecords: 1000,
      batchMaxBytes: 1_000_000,
      maxPendingBytes: 10_000_000,
      maxPendingRecords: 10_000,
      ackTimeoutMs: 0,
      compression: CompressionTypes.None,
    },
    log,
    new BridgeMetrics(),
  );
  onTestFinished(() => {
    pipeline.close();
  });
  const store = await KafkaSessionStore.open(
    kafka,
    pipeline,
    {
      instanceId: 'bridge-b',
      clientId: 'session-claim-test',
      sessionsTopic,
      messagesTopic: `session-messages-claim-${id}`,
      partitions: 1,
      replicationFactor: 1,
      messagesRetentionMs: 3_600_000,
      timeoutMs: 30_000,
      instanceTimeoutMs,
    },
    log,
  );
  onTestFinished(() => store.close());
  const remote: SessionState[] = [];
  const adopted: SessionState[] = [];
  store.listen({
    lostSession: () => undefined,
    remoteSession: (_, state) => remote.push(state),
    remoteEnded: () => undefined,
    adopted: (_, state) => adopted.push(state),
  });
  return {
    clientId,
    store,
    remote,
    adopted,
    written: (state: SessionState | undefined) => other.send(record(state)),
    interposeOnce: (state: SessionState | undefined) => {
      interpose = () => other.send(record(state));
    },
    interposed,
  };
}

const fresh = {
  identity: { username: undefined, proof: 'none' as const },
  assignedId: false,
  expiryInterval: 3600,
};

describe('session claims', () => {
  it('a claim takes over the record the other bridge wrote just before it, unread when the claim was written', async () => {
    const race = await claimRace();
    // the other bridge's session, read here: its client has no QoS 2 packet id yet
    await race.written(sessionOf([]));
    await waitFor(() => race.remote.length === 1);
    // its client got PUBREC for packet id 42 (saved first), then moves here
    race.interposeOnce(sessionOf([42]));
    const taken = await race.store.claim(race.clientId, fresh);
    expect(race.interposed()).toBe(true);
    expect(taken?.qos2Received).toEqual([42]);
  });

  it("a gone bridge's session is adopted as its last save left it, read only after the adoption was written", async () => {
    // bridge-a never sends a heartbeat: gone, and its sessions are adopted on the next round
    const race = await claimRace(1_000);
    race.interposeOnce(sessionOf([42]));
    await race.written(sessionOf([]));
    await waitFor(() => race.adopted.length === 1);
    expect(race.interposed()).toBe(true);
    expect(race.adopted[0]?.qos2Received).toEqual([42]);
    expect(race.adopted[0]?.online).toBe(false);
  });

  it('a session the other bridge ended just before the claim is not taken over: the client starts afresh', async () => {
    const race = await claimRace();
    await race.written(sessionOf([7]));
    await waitFor(() => race.remote.length === 1);
    race.interposeOnce(undefined);
    const taken = await race.store.claim(race.clientId, fresh);
    expect(race.interposed()).toBe(true);
    expect(taken).toBeUndefined();
  });
});

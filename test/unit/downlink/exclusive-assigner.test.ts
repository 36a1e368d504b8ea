import { AssignerProtocol, type Cluster, type GroupMember } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { EXCLUSIVE_ASSIGNER, exclusiveAssigner } from '../../../src/downlink/exclusive-assigner.js';

/** Topics the fake cluster has metadata for once asked to (as KafkaJS's cluster does). */
const known = new Set<string>();
const cluster = {
  addMultipleTargetTopics: (topics: string[]) => {
    for (const topic of topics) known.add(topic);
    return Promise.resolve();
  },
  findTopicPartitionMetadata: (topic: string) =>
    known.has(topic)
      ? (topic === 'cmds' ? [2, 0, 1] : [0]).map((partitionId) => ({ partitionId }))
      : [],
} as unknown as Cluster;

function assigner(startedAt: number, heldSince?: number, consuming = heldSince !== undefined) {
  return exclusiveAssigner({ startedAt, heldSince: () => heldSince, consuming: () => consuming })({
    cluster,
    groupId: 'g',
    logger: undefined as never,
  });
}

/** A member as the group leader sees it: the metadata its own assigner announced. */
function member(
  memberId: string,
  startedAt: number,
  heldSince?: number,
  topics = ['cmds', 'config'],
  consuming = heldSince !== undefined,
): GroupMember {
  return {
    memberId,
    memberMetadata: assigner(startedAt, heldSince, consuming).protocol({ topics }).metadata,
  };
}

async function assign(members: GroupMember[]) {
  const leader = assigner(0);
  expect(leader.name).toBe(EXCLUSIVE_ASSIGNER);
  const result = await leader.assign({ members, topics: ['cmds'] });
  return result.map(({ memberId, memberAssignment }) => ({
    memberId,
    assignment: AssignerProtocol.MemberAssignment.decode(memberAssignment)?.assignment,
  }));
}

describe('exclusiveAssigner', () => {
  it('gives every partition of the topics it subscribes to to the member that holds them, whatever its age', async () => {
    expect(await assign([member('new', 100), member('old', 200, 5_000)])).toEqual([
      { memberId: 'old', assignment: { cmds: [0, 1, 2], config: [0] } },
    ]);
  });

  it('prefers the latest holder when two believe they hold them (one was dropped while stalled)', async () => {
    expect(await assign([member('stalled', 100, 1_000), member('took-over', 200, 9_000)])).toEqual([
      { memberId: 'took-over', assignment: { cmds: [0, 1, 2], config: [0] } },
    ]);
  });

  it('gives them back to a returning holder from a member still waiting out its takeover (KafkaJS restarted the holder’s consumer)', async () => {
    const taker = member('taker', 200, 9_000, ['cmds', 'config'], false);
    expect((await assign([taker, member('holder', 100, 1_000)]))[0]?.memberId).toBe('holder');
    // with no consuming holder back, the taker keeps them
    expect((await assign([taker, member('newcomer', 50)]))[0]?.memberId).toBe('taker');
  });

  it('gives them to the member that started first when none holds them (ties: smaller id)', async () => {
    expect((await assign([member('b', 200), member('a', 300)]))[0]?.memberId).toBe('b');
    expect((await assign([member('b', 200), member('a', 200)]))[0]?.memberId).toBe('a');
  });

  it('assigns the topics the owner subscribes to, not the leader’s', async () => {
    expect(await assign([member('owner', 1, 2, ['cmds', 'new-topic'])])).toEqual([
      { memberId: 'owner', assignment: { cmds: [0, 1, 2], 'new-topic': [0] } },
    ]);
  });

  it('puts members that announce no start time (not a bridge) last', async () => {
    const foreign = {
      memberId: 'a-foreign',
      memberMetadata: AssignerProtocol.MemberMetadata.encode({
        version: 0,
        topics: ['cmds'],
        userData: Buffer.from('not json'),
      }),
    };
    expect((await assign([foreign, member('z', 5)]))[0]?.memberId).toBe('z');
  });
});

import { AssignerProtocol, type Cluster, type GroupMember } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { EXCLUSIVE_ASSIGNER, exclusiveAssigner } from '../../../src/downlink/exclusive-assigner.js';

const cluster = {
  findTopicPartitionMetadata: (topic: string) =>
    (topic === 'cmds' ? [2, 0, 1] : [0]).map((partitionId) => ({ partitionId })),
} as unknown as Cluster;

/** A member as the group leader sees it: the metadata its own assigner announced. */
function member(memberId: string, startedAt: number, holding: boolean): GroupMember {
  const assigner = exclusiveAssigner({ startedAt, holdsPartitions: () => holding })({
    cluster,
    groupId: 'g',
    logger: undefined as never,
  });
  return { memberId, memberMetadata: assigner.protocol({ topics: ['cmds'] }).metadata };
}

async function assign(members: GroupMember[]) {
  const assigner = exclusiveAssigner({ startedAt: 0, holdsPartitions: () => false })({
    cluster,
    groupId: 'g',
    logger: undefined as never,
  });
  expect(assigner.name).toBe(EXCLUSIVE_ASSIGNER);
  const result = await assigner.assign({ members, topics: ['cmds', 'config'] });
  return result.map(({ memberId, memberAssignment }) => ({
    memberId,
    assignment: AssignerProtocol.MemberAssignment.decode(memberAssignment)?.assignment,
  }));
}

describe('exclusiveAssigner', () => {
  it('gives every partition of every topic to the member that holds them, whatever its age', async () => {
    expect(await assign([member('new', 100, false), member('old', 200, true)])).toEqual([
      { memberId: 'old', assignment: { cmds: [0, 1, 2], config: [0] } },
    ]);
  });

  it('gives them to the member that started first when none holds them (ties: smaller id)', async () => {
    expect(await assign([member('b', 200, false), member('a', 300, false)])).toEqual([
      { memberId: 'b', assignment: { cmds: [0, 1, 2], config: [0] } },
    ]);
    expect(await assign([member('b', 200, false), member('a', 200, false)])).toEqual([
      { memberId: 'a', assignment: { cmds: [0, 1, 2], config: [0] } },
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
    expect((await assign([foreign, member('z', 5, false)]))[0]?.memberId).toBe('z');
  });
});

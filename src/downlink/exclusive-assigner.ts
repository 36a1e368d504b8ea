import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

/** Name every bridge announces, so that all members of a downlink group agree on it. */
export const EXCLUSIVE_ASSIGNER = 'MqttKafkaBridgeExclusive';

const VERSION = 1;

/**
 * A KafkaJS partition assigner that gives every partition to one member, the
 * others stand by with nothing. The member keeps them that holds them already;
 * when none does (first start, the owner left), the one that started first
 * gets them (ties: the smaller member id). Both facts travel in the member
 * metadata, as JSON.
 *
 * Sessions live in one bridge's memory, so a bridge can only deliver the
 * commands of devices connected to it. Splitting a group's partitions between
 * two bridges (a rolling deploy overlapping old and new, a second bridge
 * started with the same group by mistake) would make each drop the commands
 * of the other's devices and commit past them. With this assigner the bridge
 * that already consumes keeps everything; the newcomer takes over, from the
 * committed offsets, once the first one leaves the group.
 */
export function exclusiveAssigner(member: {
  /** When this member's consumer was created (ms since the epoch). */
  startedAt: number;
  /** Whether this member holds the group's partitions now. */
  holdsPartitions: () => boolean;
}): PartitionAssigner {
  return ({ cluster }) => ({
    name: EXCLUSIVE_ASSIGNER,
    version: VERSION,
    // KafkaJS declares assign() as returning assignments, but only the leader's call is used
    // and members absent from the result get an empty assignment.
    // eslint-disable-next-line @typescript-eslint/require-await
    async assign({ members, topics }) {
      const owner = members
        .map(({ memberId, memberMetadata }) => ({ memberId, ...announced(memberMetadata) }))
        .sort(
          (a, b) =>
            Number(b.holding) - Number(a.holding) ||
            a.startedAt - b.startedAt ||
            (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0),
        )[0];
      if (owner === undefined) return [];
      const assignment: Record<string, number[]> = {};
      for (const topic of topics) {
        assignment[topic] = cluster
          .findTopicPartitionMetadata(topic)
          .map(({ partitionId }) => partitionId)
          .sort((a, b) => a - b);
      }
      return [
        {
          memberId: owner.memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({
            version: VERSION,
            assignment,
            userData: Buffer.alloc(0),
          }),
        },
      ];
    },
    protocol({ topics }) {
      return {
        name: EXCLUSIVE_ASSIGNER,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: VERSION,
          topics,
          userData: Buffer.from(
            JSON.stringify({ startedAt: member.startedAt, holding: member.holdsPartitions() }),
          ),
        }),
      };
    },
  });
}

/** What a member announced; a member that announces nothing (another assigner's) comes last. */
function announced(metadata: Buffer): { startedAt: number; holding: boolean } {
  try {
    const parsed: unknown = JSON.parse(
      AssignerProtocol.MemberMetadata.decode(metadata)?.userData.toString() ?? '',
    );
    if (typeof parsed === 'object' && parsed !== null) {
      const { startedAt, holding } = parsed as Record<string, unknown>;
      if (typeof startedAt === 'number' && typeof holding === 'boolean') {
        return { startedAt, holding };
      }
    }
  } catch {
    // not JSON: not a bridge
  }
  return { startedAt: Number.MAX_SAFE_INTEGER, holding: false };
}

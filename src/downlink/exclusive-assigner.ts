import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

/** Name every bridge announces, so that all members of a downlink group agree on it. */
export const EXCLUSIVE_ASSIGNER = 'MqttKafkaBridgeExclusive';

const VERSION = 1;

/** What a member tells the group leader about itself (member metadata, as JSON). */
interface Announced {
  memberId: string;
  /** The topics it subscribes to. */
  topics: string[];
  /** When its consumer was created (ms since the epoch). */
  startedAt: number;
  /** Since when it holds the group's partitions; undefined: it holds none. */
  heldSince: number | undefined;
  /** Whether it consumes them (holds them and is not waiting out a takeover). */
  consuming: boolean;
}

/**
 * A KafkaJS partition assigner that gives every partition to one member, the
 * others stand by with nothing. The member that consumes them keeps them; when
 * several believe they do (one was dropped from the group while stalled, and
 * another took over), the latest holder keeps them. A member that took them
 * over and still waits before consuming gives them back to a holder that
 * returns (KafkaJS leaves the group and joins again when it restarts a
 * consumer). When none holds them (first start, the holder left), the one
 * that started first gets them (ties: the smaller member id). The owner gets
 * the partitions of the topics it subscribes to.
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
  startedAt: number;
  /** Since when this member holds the group's partitions; undefined: none. */
  heldSince: () => number | undefined;
  /** Whether it consumes them: holds them and is not waiting out a takeover. */
  consuming: () => boolean;
}): PartitionAssigner {
  return ({ cluster }) => ({
    name: EXCLUSIVE_ASSIGNER,
    version: VERSION,
    async assign({ members }) {
      const owner = members
        .map(({ memberId, memberMetadata }) => announced(memberId, memberMetadata))
        .sort(byPrecedence)[0];
      if (owner === undefined) return [];
      // the leader has metadata for its own topics; the owner's may differ (mappings changed)
      await cluster.addMultipleTargetTopics(owner.topics);
      const assignment: Record<string, number[]> = {};
      for (const topic of owner.topics) {
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
            JSON.stringify({
              startedAt: member.startedAt,
              heldSince: member.heldSince() ?? null,
              consuming: member.consuming(),
            }),
          ),
        }),
      };
    },
  });
}

/** Consuming members first, then members waiting out a takeover (each: latest holder first),
 * then, among members holding nothing, the earliest started. */
function byPrecedence(a: Announced, b: Announced): number {
  const rank = (member: Announced): number =>
    member.consuming ? 0 : member.heldSince !== undefined ? 1 : 2;
  const difference = rank(a) - rank(b) || (b.heldSince ?? 0) - (a.heldSince ?? 0);
  if (difference !== 0) return difference;
  return (
    a.startedAt - b.startedAt || (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0)
  );
}

/** What a member announced; a member that announces nothing (not a bridge) comes last. */
function announced(memberId: string, metadata: Buffer): Announced {
  const decoded = AssignerProtocol.MemberMetadata.decode(metadata);
  const fallback = {
    memberId,
    topics: decoded?.topics ?? [],
    startedAt: Number.MAX_SAFE_INTEGER,
    heldSince: undefined,
    consuming: false,
  };
  try {
    const parsed: unknown = JSON.parse(decoded?.userData.toString() ?? '');
    if (typeof parsed !== 'object' || parsed === null) return fallback;
    const { startedAt, heldSince, consuming } = parsed as Record<string, unknown>;
    if (typeof startedAt !== 'number') return fallback;
    return {
      ...fallback,
      startedAt,
      heldSince: typeof heldSince === 'number' ? heldSince : undefined,
      consuming: consuming === true && typeof heldSince === 'number',
    };
  } catch {
    return fallback; // not JSON: not a bridge
  }
}

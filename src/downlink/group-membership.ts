import type { Consumer } from 'kafkajs';
import type { Logger } from '../observability/logger.js';
import type { BridgeMetrics } from '../observability/metrics.js';
import { PartitionOffsets } from './partition-offsets.js';

/**
 * This bridge's membership of one downlink consumer group: the partitions it
 * holds, what it handed over of each, and whether it consumes, stands by, or
 * waits out a takeover.
 *
 * After a rebalance KafkaJS fetches again from the committed offsets. A
 * partition this bridge keeps was handed over up to its tracker's end: those
 * records are skipped, so a rebalance neither repeats nor reorders commands.
 * Partitions it lost are forgotten (the new owner consumes from the last
 * commit). A bridge that joins a group another bridge consumes stands by with
 * no partition (see exclusiveAssigner); when it takes over it waits
 * `startDelayMs` first, so the devices of the bridge that left can reconnect
 * here and subscribe before their commands are consumed.
 */
export class GroupMembership {
  readonly groupId: string;
  readonly consumer: Consumer;
  /** Since when this bridge holds the group's partitions; undefined: it stands by. */
  heldSince: number | undefined;
  /** Per assigned partition (`partitionKey`), what was handed over and settled. */
  readonly #partitions = new Map<
    string,
    { topic: string; partition: number; offsets: PartitionOffsets }
  >();
  readonly #startDelayMs: number;
  readonly #log: Logger;
  readonly #metrics: BridgeMetrics;
  /** Whether it joined the group once already. */
  #joined: boolean;
  /** After a takeover, consuming waits until then (ms since the epoch). */
  #resumeAt = 0;
  #resumeTimer: NodeJS.Timeout | undefined;

  constructor(
    groupId: string,
    consumer: Consumer,
    options: {
      startDelayMs: number;
      /** Whatever it gets on its first join is a takeover too (started again after a failure). */
      takeOverOnFirstJoin: boolean;
    },
    log: Logger,
    metrics: BridgeMetrics,
  ) {
    this.groupId = groupId;
    this.consumer = consumer;
    this.#startDelayMs = options.startDelayMs;
    this.#joined = options.takeOverOnFirstJoin;
    this.#log = log;
    this.#metrics = metrics;
  }

  /** Whether it consumes: holds the partitions and is not waiting out a takeover. */
  get consuming(): boolean {
    return this.heldSince !== undefined && this.#resumeAt <= Date.now();
  }

  /** The tracker of a partition, made on first use. */
  partition(topic: string, partition: number): PartitionOffsets {
    const key = partitionKey(topic, partition);
    let tracked = this.#partitions.get(key);
    if (!tracked) {
      tracked = { topic, partition, offsets: new PartitionOffsets() };
      this.#partitions.set(key, tracked);
    }
    return tracked.offsets;
  }

  /** The offsets to commit: of the partitions whose committable offset moved. */
  committable(): Array<{ topic: string; partition: number; offset: string }> {
    const commits = [];
    for (const { topic, partition, offsets } of this.#partitions.values()) {
      const offset = offsets.committable();
      if (offset !== undefined) commits.push({ topic, partition, offset });
    }
    return commits;
  }

  /** A (re)join of the group gave this assignment. */
  joined(assignment: Record<string, number[]>): void {
    const assigned = new Set(
      Object.entries(assignment).flatMap(([topic, partitions]) =>
        partitions.map((partition) => partitionKey(topic, partition)),
      ),
    );
    for (const key of this.#partitions.keys()) {
      if (!assigned.has(key)) this.#partitions.delete(key);
    }
    this.#metrics.downlinkAssignedPartitions.set({ group: this.groupId }, assigned.size);
    const firstJoin = !this.#joined;
    this.#joined = true;
    if (assigned.size === 0) {
      if (firstJoin || this.heldSince !== undefined) {
        this.#log.info(
          { groupId: this.groupId },
          'downlink standing by: another bridge consumes this group',
        );
      }
      this.heldSince = undefined;
      return;
    }
    const now = Date.now();
    if (this.heldSince === undefined) {
      this.heldSince = now;
      if (!firstJoin) {
        this.#resumeAt = now + this.#startDelayMs;
        this.#log.info(
          { groupId: this.groupId, delayMs: this.#startDelayMs },
          'downlink taking over the group from a bridge that left',
        );
      }
    }
    // (again) on every join until then: a consumer KafkaJS restarted forgot the pause
    if (this.#resumeAt > now) this.#pauseUntilResume(Object.keys(assignment));
  }

  /** Leaves the group. */
  async leave(): Promise<void> {
    clearTimeout(this.#resumeTimer);
    await this.consumer.disconnect().catch(() => undefined);
  }

  #pauseUntilResume(topics: string[]): void {
    const partitions = topics.map((topic) => ({ topic }));
    try {
      this.consumer.pause(partitions);
    } catch (error) {
      this.#log.warn({ err: error }, 'downlink takeover: cannot pause');
      return;
    }
    clearTimeout(this.#resumeTimer);
    this.#resumeTimer = setTimeout(() => {
      try {
        this.consumer.resume(partitions);
      } catch (error) {
        // the consumer crashed meanwhile: its restart joins again, unpaused
        this.#log.warn({ err: error }, 'downlink takeover: cannot resume');
      }
    }, this.#resumeAt - Date.now());
  }
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

import type { EachMessagePayload, Kafka } from 'kafkajs';
import type { ProducerPipeline } from '../kafka/producer-pipeline.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import {
  decodeHeartbeat,
  encodeHeartbeat,
  instanceKey,
  instanceOfKey,
  type Heartbeat,
} from './fleet-liveness.js';
import { SessionFencing, type Ownership } from './session-fencing.js';
import {
  clientIdOfKey,
  decodeSessionState,
  encodeSessionState,
  ownershipHeaders,
  ownershipOf,
  sessionKey,
  type SessionState,
} from './session-record.js';
import { CatchUp, TopicTail, prepareStateTopic } from './state-topic.js';

/** How long the epochs of ended sessions are remembered against late writes. */
const ENDED_MEMORY_MS = 3_600_000;

/** A claim lost to another claim of the same epoch (another bridge's, or a newer one here). */
export class ClaimConflict extends Error {}

/** A session as the log last said, with who owns it. */
export interface LoggedSession extends Ownership {
  state: SessionState;
}

/** A claim read back as the winner. */
export interface WonClaim {
  epoch: number;
  /**
   * The session the claim took over: the last one applied before the claim's own record (not
   * the one the claim was written from, which may have been older).
   */
  replaced: LoggedSession | undefined;
}

interface PendingClaim {
  epoch: number;
  settle: (won: boolean, replaced: LoggedSession | undefined) => void;
}

/** What the sessions topic tells its reader as records apply. */
export interface SessionLogListener {
  /** A session record (of any owner) applied. */
  applied(clientId: string, session: LoggedSession): void;
  /** A session ended (by its owner). */
  ended(clientId: string, ownership: Ownership): void;
  /** A bridge's heartbeat; `caughtUp`: read live, not while reading the topic at start. */
  heartbeat(instanceId: string, heartbeat: Heartbeat, caughtUp: boolean): void;
}

export interface SessionLogOptions {
  topic: string;
  /** This bridge: the owner it writes. */
  instanceId: string;
  /** Consumer group prefix (a group of its own is used). */
  clientId: string;
  partitions: number;
  replicationFactor: number;
  /** How long start waits for the topic to be read to its end. */
  timeoutMs: number;
}

/**
 * The sessions topic (compacted, key = "s:" + client id): every bridge reads all of it, from
 * the beginning at start and then as it grows, applying records under the fencing rules
 * (SessionFencing). A bridge writes the sessions it owns; a claim (a new epoch) makes it the
 * owner and is confirmed once read back as the winner.
 */
export class SessionLog {
  readonly #options: SessionLogOptions;
  readonly #pipeline: ProducerPipeline;
  readonly #listener: SessionLogListener;
  readonly #fencing = new SessionFencing();
  readonly #sessions = new Map<string, LoggedSession>();
  /** Claims waiting to be read back, by client id. */
  readonly #claims = new Map<string, PendingClaim>();
  readonly #failures: RateLimitedLog;
  #tail: TopicTail | undefined;
  #caughtUp = false;
  #closed = false;
  readonly #forgetTimer: NodeJS.Timeout;

  private constructor(
    options: SessionLogOptions,
    pipeline: ProducerPipeline,
    listener: SessionLogListener,
    log: Logger,
  ) {
    this.#options = options;
    this.#pipeline = pipeline;
    this.#listener = listener;
    this.#failures = new RateLimitedLog(log);
    this.#forgetTimer = setInterval(() => {
      this.#fencing.forgetEndedBefore(Date.now() - ENDED_MEMORY_MS);
    }, ENDED_MEMORY_MS).unref();
  }

  /**
   * Creates the topic if missing (compacted; another cleanup policy refuses start), reads it to
   * its end, and keeps reading it.
   */
  static async open(
    kafka: Kafka,
    pipeline: ProducerPipeline,
    options: SessionLogOptions,
    listener: SessionLogListener,
    log: Logger,
  ): Promise<SessionLog> {
    const sessionLog = new SessionLog(options, pipeline, listener, log);
    const started = Date.now();
    const ends = await prepareStateTopic(
      kafka,
      {
        topic: options.topic,
        what: 'sessions',
        cleanupPolicy: 'compact',
        wrongPolicy: 'refuse',
        partitions: options.partitions,
        replicationFactor: options.replicationFactor,
      },
      log,
    );
    const caughtUp = new CatchUp(ends);
    sessionLog.#tail = await TopicTail.start(
      kafka,
      {
        topic: options.topic,
        groupId: `${options.clientId}-sessions-${options.instanceId}-${started}`,
        what: 'sessions topic',
      },
      log,
      (payload) => {
        sessionLog.#read(payload);
        caughtUp.consumed(payload.partition, payload.message.offset);
      },
    );
    if (!(await caughtUp.within(options.timeoutMs))) {
      throw new Error(`not read to its end within ${options.timeoutMs} ms`);
    }
    sessionLog.#caughtUp = true;
    log.info(
      { topic: options.topic, sessions: sessionLog.#sessions.size, ms: Date.now() - started },
      'sessions read from Kafka',
    );
    return sessionLog;
  }

  /** Every session the log holds now (of every owner). */
  sessions(): ReadonlyMap<string, LoggedSession> {
    return this.#sessions;
  }

  /** Who wrote the client id's last record applied (also of an ended session), with its epoch. */
  ownership(clientId: string): Ownership | undefined {
    return this.#fencing.latest(clientId);
  }

  /**
   * Makes this bridge the owner of the session with a new epoch: resolves once the claim is read
   * back as the winner, with the session it took over; rejects when it cannot be written, or
   * (ClaimConflict) another claim of the same epoch came first or a newer claim here replaced it.
   */
  claim(clientId: string, state: SessionState): Promise<WonClaim> {
    if (this.#closed) return Promise.reject(new Error('sessions topic closed'));
    const epoch = this.#fencing.nextEpoch(clientId);
    return new Promise<WonClaim>((resolve, reject) => {
      this.#claims.get(clientId)?.settle(false, undefined);
      this.#claims.set(clientId, {
        epoch,
        settle: (won, replaced) => {
          if (won) resolve({ epoch, replaced });
          else reject(new ClaimConflict(`session ${clientId} claimed by another at the same time`));
        },
      });
      this.write(clientId, { owner: this.#options.instanceId, epoch }, state, (failed) => {
        if (!failed) return;
        const claim = this.#claims.get(clientId);
        if (claim?.epoch !== epoch) return;
        this.#claims.delete(clientId);
        reject(new Error(`session ${clientId} not written to Kafka: ${failed}`));
      });
    });
  }

  /**
   * Writes a session's state (undefined: its end, a tombstone) with this ownership; `done` once
   * Kafka has it (with the failure's reason when it could not be written).
   */
  write(
    clientId: string,
    ownership: Ownership,
    state: SessionState | undefined,
    done?: (failure?: string) => void,
  ): void {
    this.#pipeline.enqueue(
      [
        {
          topic: this.#options.topic,
          key: sessionKey(clientId),
          value: state === undefined ? null : Buffer.from(encodeSessionState(state)),
          partition: undefined,
          timestamp: Date.now(),
          headers: ownershipHeaders(ownership),
        },
      ],
      (failure) => {
        if (failure) {
          this.#failures.warn(
            failure.reason,
            { topic: this.#options.topic, reason: failure.reason },
            'session state not written to Kafka',
          );
        }
        done?.(failure?.reason);
      },
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#forgetTimer);
    for (const claim of this.#claims.values()) claim.settle(false, undefined);
    this.#claims.clear();
    await this.#tail?.close();
  }

  /** Writes this bridge's heartbeat; `done` once Kafka has it. */
  heartbeat(state: Heartbeat['state'], done?: () => void): void {
    this.#pipeline.enqueue(
      [
        {
          topic: this.#options.topic,
          key: instanceKey(this.#options.instanceId),
          value: Buffer.from(encodeHeartbeat({ at: Date.now(), state })),
          partition: undefined,
          timestamp: Date.now(),
          headers: {},
        },
      ],
      () => done?.(),
    );
  }

  #read({ message }: EachMessagePayload): void {
    const key = message.key?.toString('utf8') ?? '';
    const instanceId = instanceOfKey(key);
    if (instanceId !== undefined) {
      const heartbeat = message.value && decodeHeartbeat(message.value.toString('utf8'));
      if (heartbeat) this.#listener.heartbeat(instanceId, heartbeat, this.#caughtUp);
      return;
    }
    const clientId = clientIdOfKey(key);
    if (clientId === undefined) return;
    const ownership = ownershipOf(message.headers);
    if (message.value === null) {
      // a tombstone without ownership (an operator's) ends whatever is there
      const end = ownership ?? this.#fencing.latest(clientId) ?? { owner: '', epoch: 0 };
      if (this.#fencing.apply(clientId, end, true)) this.#ended(clientId, end);
      this.#settleClaim(clientId, undefined);
      return;
    }
    if (ownership === undefined) {
      this.#skip(message.offset, 'no owner or epoch');
      return;
    }
    let state: SessionState;
    try {
      state = decodeSessionState(message.value.toString('utf8'));
    } catch (error) {
      this.#skip(message.offset, (error as Error).message);
      return;
    }
    const replaced = this.#sessions.get(clientId);
    if (this.#fencing.apply(clientId, ownership, false)) {
      const session = { ...ownership, state };
      this.#sessions.set(clientId, session);
      this.#listener.applied(clientId, session);
    }
    this.#settleClaim(clientId, replaced);
  }

  #ended(clientId: string, ownership: Ownership): void {
    this.#sessions.delete(clientId);
    this.#listener.ended(clientId, ownership);
  }

  /**
   * A claim waiting for this client id is decided by what the log holds now; `replaced`: the
   * session before the record just read (what a claim won by that record took over).
   */
  #settleClaim(clientId: string, replaced: LoggedSession | undefined): void {
    const claim = this.#claims.get(clientId);
    if (claim === undefined) return;
    const latest = this.#fencing.latest(clientId);
    if (latest === undefined || latest.epoch < claim.epoch) return; // not read back yet
    this.#claims.delete(clientId);
    claim.settle(
      latest.epoch === claim.epoch && latest.owner === this.#options.instanceId,
      replaced,
    );
  }

  #skip(offset: string, reason: string): void {
    this.#failures.warn(
      'undecodable',
      { topic: this.#options.topic, offset, reason },
      'session record skipped',
    );
  }
}

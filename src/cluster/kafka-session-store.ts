import type { Kafka } from 'kafkajs';
import type { ProducerPipeline } from '../kafka/producer-pipeline.js';
import type { Logger } from '../observability/logger.js';
import type { Delivery, Session } from '../mqtt/session.js';
import type {
  FleetEvents,
  FreshSession,
  MailboxPosition,
  SessionState,
  SessionStore,
} from '../mqtt/session-store.js';
import { FleetLiveness } from './fleet-liveness.js';
import { ClaimConflict, SessionLog, type LoggedSession } from './session-log.js';
import { SessionMessages } from './session-messages.js';

/**
 * Times a connecting client's claim is made when it keeps losing to claims of the same epoch
 * (another bridge's connection of the same client id, an adoption of its stopped bridge's
 * sessions): the client is here, so its claim goes over them rather than refusing it.
 */
const CLAIM_ATTEMPTS = 3;

/** Changes saved together, at most this long after the first of them. */
const SAVE_DELAY_MS = 50;

export interface KafkaSessionStoreOptions {
  instanceId: string;
  /** Consumer group prefix. */
  clientId: string;
  sessionsTopic: string;
  messagesTopic: string;
  partitions: number;
  replicationFactor: number;
  messagesRetentionMs: number;
  /** How long start waits for the sessions topic to be read. */
  timeoutMs: number;
  /** A bridge not heard of for this long is gone: its sessions are adopted. */
  instanceTimeoutMs: number;
}

/**
 * Sessions kept in Kafka (sessions.store kafka): what each session is in the sessions topic,
 * its messages in the messages topic (see SessionLog and SessionMessages). This bridge writes
 * only the sessions it owns, under the epoch of its claim.
 */
export class KafkaSessionStore implements SessionStore {
  readonly keepsSessions = true;
  readonly #options: KafkaSessionStoreOptions;
  readonly #log: Logger;
  #sessionLog!: SessionLog;
  #messages!: SessionMessages;
  #events: FleetEvents | undefined;
  /** Sessions this bridge owns, with the epoch of its claim. */
  readonly #epochs = new Map<string, number>();
  /** Sessions ended here: what is saved of them later is not written. */
  readonly #ended = new WeakSet<Session>();
  /** Positions read from the log for owned sessions not attached here yet. */
  readonly #positions = new Map<string, MailboxPosition>();
  /** Sessions changed and not saved yet, with what waits for the save. */
  readonly #dirty = new Map<string, { session: Session; waiting: Array<() => void> }>();
  #saveTimer: NodeJS.Timeout | undefined;
  /** Saves written and not yet acknowledged. */
  #writing = 0;
  #idle: (() => void) | undefined;
  readonly #liveness: FleetLiveness;
  /** Sessions of gone bridges being claimed here. */
  readonly #adopting = new Set<string>();
  /**
   * Sessions claimed from a state older than the one they took over (a record of the other
   * bridge read only after the claim was written): their next save goes at once, so that the
   * log soon holds what this bridge has, not the claim's older copy.
   */
  readonly #claimedStale = new Set<string>();
  #heartbeatTimer: NodeJS.Timeout | undefined;

  private constructor(options: KafkaSessionStoreOptions, log: Logger) {
    this.#options = options;
    this.#log = log;
    this.#liveness = new FleetLiveness(options.instanceId, options.instanceTimeoutMs);
  }

  /** Prepares both topics and reads the sessions topic to its end. */
  static async open(
    kafka: Kafka,
    pipeline: ProducerPipeline,
    options: KafkaSessionStoreOptions,
    log: Logger,
  ): Promise<KafkaSessionStore> {
    const store = new KafkaSessionStore(options, log);
    store.#messages = await SessionMessages.open(
      kafka,
      pipeline,
      {
        topic: options.messagesTopic,
        clientId: options.clientId,
        instanceId: options.instanceId,
        partitions: options.partitions,
        replicationFactor: options.replicationFactor,
        retentionMs: options.messagesRetentionMs,
      },
      {
        changed: (clientId, done) => {
          store.#changed(clientId, done);
        },
      },
      log,
    );
    store.#sessionLog = await SessionLog.open(
      kafka,
      pipeline,
      {
        topic: options.sessionsTopic,
        instanceId: options.instanceId,
        clientId: options.clientId,
        partitions: options.partitions,
        replicationFactor: options.replicationFactor,
        timeoutMs: options.timeoutMs,
      },
      {
        applied: (clientId, session) => {
          store.#applied(clientId, session);
        },
        ended: (clientId, ownership) => {
          if (ownership.owner === options.instanceId) return;
          store.#lost(clientId);
          store.#events?.remoteEnded(clientId);
        },
        heartbeat: (instanceId, heartbeat, caughtUp) => {
          store.#liveness.heard(instanceId, heartbeat, caughtUp ? Date.now() : heartbeat.at);
        },
      },
      log,
    );
    store.#sessionLog.heartbeat('up');
    store.#heartbeatTimer = setInterval(
      () => {
        store.#sessionLog.heartbeat('up');
        store.#adoptGone();
      },
      Math.max(250, options.instanceTimeoutMs / 4),
    );
    return store;
  }

  /**
   * Where the store tells the broker of the fleet's sessions: at once of every session other
   * bridges own now, then of every change.
   */
  listen(events: FleetEvents): void {
    this.#events = events;
    for (const [clientId, logged] of this.#sessionLog.sessions()) {
      if (logged.owner !== this.#options.instanceId) events.remoteSession(clientId, logged.state);
    }
  }

  /**
   * The sessions this bridge owned when it last stopped (or crashed): the broker takes them
   * back at start, offline, with what they were.
   */
  ownedSessions(): Array<[string, SessionState]> {
    const owned: Array<[string, SessionState]> = [];
    for (const [clientId, logged] of this.#sessionLog.sessions()) {
      if (logged.owner !== this.#options.instanceId) continue;
      this.#epochs.set(clientId, logged.epoch);
      if (logged.state.mailbox) this.#positions.set(clientId, logged.state.mailbox);
      owned.push([clientId, logged.state]);
    }
    return owned;
  }

  keepsMessages(session: Session): boolean {
    return session.remote !== undefined || session.expiryInterval > 0;
  }

  claim(
    clientId: string,
    fresh: FreshSession,
    attempts = CLAIM_ATTEMPTS,
  ): Promise<SessionState | undefined> {
    // written from what this bridge has read of the session so far; what it takes over is what
    // the log held just before the claim (records of the other bridge not read yet included)
    const known = this.#sessionLog.sessions().get(clientId);
    const state: SessionState = known
      ? { ...known.state, online: true, disconnectedAt: undefined }
      : { ...emptyState(), ...fresh };
    const claimed = this.#sessionLog.claim(clientId, state).catch((error: unknown) => {
      // another claim of the same epoch came first: this one goes again, with the next epoch
      if (error instanceof ClaimConflict && attempts > 1) return undefined;
      throw error;
    });
    return claimed.then((won) => {
      if (won === undefined) return this.claim(clientId, fresh, attempts - 1);
      const { epoch, replaced } = won;
      this.#epochs.set(clientId, epoch);
      if (replaced !== known) this.#claimedStale.add(clientId);
      if (replaced === undefined || replaced.owner === this.#options.instanceId) return undefined;
      // a session of a bridge that is gone comes as it was when that bridge was last alive
      if (replaced.state.online && !this.#liveness.alive(replaced.owner, Date.now())) {
        const goneAt = this.#liveness.lastAlive(replaced.owner) ?? Date.now();
        replaced.state.disconnectedAt = goneAt;
      }
      // the session moves here: its messages from where the other bridge left them
      if (replaced.state.mailbox) this.#positions.set(clientId, replaced.state.mailbox);
      return replaced.state;
    });
  }

  save(session: Session, done?: () => void): void {
    const { clientId } = session;
    let dirty = this.#dirty.get(clientId);
    if (dirty?.session !== session) {
      dirty = { session, waiting: [...(dirty?.waiting ?? [])] };
      this.#dirty.set(clientId, dirty);
    }
    if (done) dirty.waiting.push(done);
    if (done || this.#claimedStale.delete(clientId)) {
      // a guarantee waits for it, or the log holds an older copy: no gathering delay
      clearTimeout(this.#saveTimer);
      this.#saveTimer = undefined;
      setImmediate(() => {
        this.#flush();
      });
    } else {
      this.#saveTimer ??= setTimeout(() => {
        this.#saveTimer = undefined;
        this.#flush();
      }, SAVE_DELAY_MS);
    }
  }

  end(session: Session): void {
    const { clientId } = session;
    this.#ended.add(session);
    this.#messages.cursors.forget(session);
    this.#positions.delete(clientId);
    const dirty = this.#dirty.get(clientId);
    if (dirty?.session === session) {
      this.#dirty.delete(clientId);
      for (const done of dirty.waiting) done();
    }
    this.#claimedStale.delete(clientId);
    const epoch = this.#epochs.get(clientId);
    if (epoch === undefined) return;
    this.#epochs.delete(clientId);
    this.#write(clientId, epoch, undefined, []);
  }

  enqueue(session: Session, delivery: Delivery, done: (kept: boolean) => void): void {
    this.#messages.write(session.clientId, delivery, done);
  }

  attach(session: Session): void {
    const { clientId } = session;
    const partition = this.#messages.partitionOf(clientId);
    this.#messages.cursors.attach(session, partition, this.#positions.get(clientId));
    this.#positions.delete(clientId);
  }

  detach(session: Session): void {
    this.#messages.cursors.detach(session);
  }

  /**
   * Saves what is unsaved, waits for Kafka to have it, says this bridge is down (the others
   * adopt its sessions), and stops reading.
   */
  async close(): Promise<void> {
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#saveTimer);
    this.#flush();
    if (this.#writing > 0) {
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
    }
    await new Promise<void>((resolve) => {
      this.#sessionLog.heartbeat('down', resolve);
    });
    await this.#sessionLog.close();
    await this.#messages.close();
  }

  #changed(clientId: string, done?: () => void): void {
    const session = this.#dirty.get(clientId)?.session ?? this.#messages.cursors.session(clientId);
    if (session === undefined) {
      done?.();
      return;
    }
    this.save(session, done);
  }

  #flush(): void {
    const dirty = [...this.#dirty.values()];
    this.#dirty.clear();
    for (const { session, waiting } of dirty) {
      const epoch = this.#epochOf(session);
      if (epoch === undefined) {
        // not (or no longer) ours: nothing to write; what waits goes on
        for (const done of waiting) done();
        continue;
      }
      this.#write(session.clientId, epoch, this.#snapshot(session), waiting);
    }
  }

  /**
   * The epoch this bridge writes a session with: that of its claim. A session started clean
   * over one that ended here (Clean Start: the broker ends the old one, then saves the new one)
   * is under the same claim, still the last one in the log: its epoch again.
   */
  #epochOf(session: Session): number | undefined {
    const { clientId } = session;
    const epoch = this.#epochs.get(clientId);
    if (epoch !== undefined || this.#ended.has(session) || session.remote) return epoch;
    const latest = this.#sessionLog.ownership(clientId);
    if (latest?.owner !== this.#options.instanceId) return undefined;
    this.#epochs.set(clientId, latest.epoch);
    return latest.epoch;
  }

  #write(
    clientId: string,
    epoch: number,
    state: SessionState | undefined,
    waiting: Array<() => void>,
  ): void {
    this.#writing++;
    this.#sessionLog.write(clientId, { owner: this.#options.instanceId, epoch }, state, () => {
      for (const done of waiting) done();
      this.#writing--;
      if (this.#writing === 0) this.#idle?.();
    });
  }

  #snapshot(session: Session): SessionState {
    const { clientId } = session;
    return {
      online: session.online,
      disconnectedAt: session.disconnectedAt,
      identity: session.identity,
      assignedId: session.assignedId,
      expiryInterval: session.expiryInterval,
      subscriptions: session.subscriptions,
      will: session.will,
      willAt: session.willAt,
      // a publish still on its way to Kafka is not acknowledged: its retransmission is new
      qos2Received: [...session.qos2Received]
        .filter(([, state]) => state === 'stored')
        .map(([id]) => id),
      mailbox: this.#messages.cursors.position(clientId) ?? this.#positions.get(clientId),
    };
  }

  /**
   * The sessions of bridges that are gone, when this bridge is the one to adopt them: claimed
   * here (offline, gone since their bridge was last alive) so that their wills go out and their
   * expiry runs; a client that reconnects meanwhile claims its session where it connects.
   */
  #adoptGone(): void {
    const now = Date.now();
    for (const [clientId, logged] of this.#sessionLog.sessions()) {
      if (logged.owner === this.#options.instanceId || this.#adopting.has(clientId)) continue;
      if (!this.#liveness.adopts(logged.owner, now)) continue;
      const goneAt = this.#liveness.lastAlive(logged.owner) ?? now;
      const adopted = adoptedState(logged.state, goneAt);
      this.#adopting.add(clientId);
      this.#sessionLog.claim(clientId, adopted).then(
        ({ epoch, replaced }) => {
          this.#adopting.delete(clientId);
          const ownership = { owner: this.#options.instanceId, epoch };
          if (replaced === undefined) {
            // the gone bridge ended it last (read only after the claim was written): ended here too
            this.#sessionLog.write(clientId, ownership, undefined);
            return;
          }
          this.#epochs.set(clientId, epoch);
          // the gone bridge's last save, read only after the claim was written, is what is taken
          let taken = adopted;
          if (replaced !== logged && replaced.owner === logged.owner) {
            taken = adoptedState(replaced.state, goneAt);
            this.#sessionLog.write(clientId, ownership, taken);
          }
          if (taken.mailbox) this.#positions.set(clientId, taken.mailbox);
          this.#log.info({ clientId, from: logged.owner }, 'session of a gone bridge adopted');
          this.#events?.adopted(clientId, taken);
        },
        () => {
          // its client came back elsewhere first, or Kafka refused: tried again next round
          this.#adopting.delete(clientId);
        },
      );
    }
  }

  #applied(clientId: string, session: LoggedSession): void {
    if (session.owner === this.#options.instanceId) return;
    this.#lost(clientId);
    this.#events?.remoteSession(clientId, session.state);
  }

  #lost(clientId: string): void {
    this.#claimedStale.delete(clientId);
    if (!this.#epochs.delete(clientId)) return;
    this.#positions.delete(clientId);
    this.#log.debug({ clientId }, 'session owned by another bridge now');
    this.#events?.lostSession(clientId);
  }
}

/** A gone bridge's session as this bridge adopts it: offline since its bridge was last alive. */
function adoptedState(state: SessionState, goneAt: number): SessionState {
  if (!state.online) return state;
  const delay = (state.will?.properties?.willDelayInterval ?? 0) * 1000;
  return { ...state, online: false, disconnectedAt: goneAt, willAt: goneAt + delay };
}

function emptyState(): SessionState {
  return {
    online: true,
    disconnectedAt: undefined,
    identity: { username: undefined, proof: 'none' },
    assignedId: false,
    expiryInterval: 0,
    subscriptions: new Map(),
    will: undefined,
    willAt: undefined,
    qos2Received: [],
    mailbox: undefined,
  };
}

import type { Duplex } from 'node:stream';
import type { IConnectPacket, UserProperties } from 'mqtt-packet';
import type { Permissions } from '../auth/permissions.js';
import type { Logger } from '../observability/logger.js';
import type { BridgeMetrics } from '../observability/metrics.js';
import type { ReplyCheck } from '../rules/downlink-types.js';
import type { UplinkPublish } from '../rules/types.js';
import { addressKey } from '../auth/auth-throttle.js';
import { Connection, type ConnectionOptions } from './connection.js';
import {
  ConnectionAdmission,
  type AdmissionLimit,
  type ConnectionLimits,
} from './connection-admission.js';
import { KeepAliveWheel } from './keep-alive-wheel.js';
import { expiryFrom, pickMessageProperties, type BrokerMessage } from './message.js';
import { DelayedPublishes, parseDelayedTopic } from './delayed.js';
import { LimitRefusals } from './limit-refusals.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import { LongTimer } from './long-timer.js';
import { QueueRoom } from './queue-room.js';
import { ReasonCode } from './reason-codes.js';
import { RetainedStore, type RetainedLimits } from './retained.js';
import {
  NEVER_EXPIRES,
  Session,
  type Delivery,
  type DropCounter,
  type Subscription,
} from './session.js';
import {
  MemorySessionStore,
  type FleetEvents,
  type FreshSession,
  type SessionState,
  type SessionStore,
} from './session-store.js';
import { TopicTree, type Match, type SharedMatch } from './topic-tree.js';
import { Traffic } from './traffic.js';
import { isSysTopic } from '../rules/mqtt-topic-name.js';
import type { SysFigures } from './sys-topics.js';
import type { UplinkOutcome, UplinkSink } from './uplink-sink.js';
import { settleAfter } from '../settle-after.js';

type Will = NonNullable<IConnectPacket['will']>;

/** What a remote session whose identity is not allowed any more may receive here: nothing. */
const DENY_RECEIVING: Permissions = {
  canPublish: () => false,
  canSubscribe: () => false,
  canReceive: () => false,
};

/** Who publishes `$SYS/` messages: no client (no client id is empty once connected). */
const SYS_ORIGIN = Object.freeze({ clientId: '', username: undefined });

/** Nothing waits for a QoS 0 retained message to be persisted. */
const IGNORE = (): void => undefined;

/** How often expired retained messages are purged. */
const RETAINED_SWEEP_MS = 60_000;

/**
 * Refused sockets held at once (waiting for the CONNECT their refusal answers, or closing):
 * beyond it a refused socket is destroyed at once, so a flood costs bounded memory too.
 */
const MAX_REFUSED_SOCKETS = 1_000;

export interface BrokerOptions extends ConnectionOptions {
  /** Messages a session keeps while its client is offline or beyond its Receive Maximum. */
  maxQueuedMessages: number;
  /** `$delay/` messages waiting at once. */
  maxDelayedMessages: number;
  /** `$delay/` messages of one client waiting at once. */
  maxDelayedPerClient: number;
  /**
   * Keeps a change of a retained message (empty payload: cleared) outside the process;
   * `done` once it is kept (or failed). Absent: retained messages live in memory only.
   */
  persistRetained?: (message: BrokerMessage, done: () => void) => void;
  /** Where sessions are kept beyond memory; absent: nowhere (sessions.store memory). */
  store?: SessionStore;
  /** retained.maxMessages and retained.maxBytes; absent: no limits. */
  retainedLimits?: RetainedLimits;
  /** mqtt.maxConnections, mqtt.maxConnectionsPerAddress and mqtt.maxConnectRate. */
  connectionLimits: ConnectionLimits;
  /**
   * downlink.slowSubscriberWaitMs: how long the downlink waits for a connected subscriber
   * whose queue is full to take a message; 0 or absent: it never waits.
   */
  slowSubscriberWaitMs?: number;
}

/** Timers of a session whose client is gone: the session's end, and a delayed will. */
interface PendingEnd {
  expiry: LongTimer | undefined;
  will: LongTimer | undefined;
  publishWill: (() => void) | undefined;
}

/**
 * The MQTT broker core: connections, sessions, subscriptions and retained
 * messages, and the path of every publish to local subscribers and to the
 * uplink. Listeners hand it sockets; it knows nothing of Kafka.
 */
export class Broker implements FleetEvents {
  readonly log: Logger;
  readonly metrics: BridgeMetrics;
  /** Refusals by the limits that bound what clients make the bridge hold: counted and logged. */
  readonly refusals: LimitRefusals;
  /** Connections closed for protocol errors, logged at most once a minute per reason code. */
  readonly protocolErrors: RateLimitedLog;
  /** Bytes and packets through the sockets, counted by connections for `$SYS/broker/...`. */
  readonly traffic = new Traffic();
  /** The keep-alive deadlines of all connections, on one timer. */
  readonly keepAlive = new KeepAliveWheel();
  /** Where every session counts what it drops. */
  readonly #drops: DropCounter = {
    dropped: (reason) => {
      this.metrics.mqttMessagesDropped.inc({ reason });
    },
  };
  readonly #sink: UplinkSink;
  readonly #options: BrokerOptions;
  readonly #connections = new Set<Connection>();
  /** Counts sockets from their accept to their close, and refuses floods of them. */
  readonly #admission: ConnectionAdmission;
  /** Refused connections whose sockets are not closed yet. */
  #refusedSockets = 0;
  /** The current connection of each client id [MQTT-3.1.4-2]. */
  readonly #clients = new Map<string, Connection>();
  readonly #sessions = new Map<string, Session>();
  /** Connected sessions with full queues, which the downlink waits for. */
  readonly #queueRoom: QueueRoom;
  readonly #pendingEnds = new Map<string, PendingEnd>();
  readonly #subscriptions = new TopicTree<Subscription>();
  readonly #retained: RetainedStore;
  /**
   * The `$SYS/` messages this bridge publishes, apart from the clients' retained messages: outside
   * retained.maxMessages / maxBytes and their metrics, never persisted (see publishSys).
   */
  readonly #sysRetained = new RetainedStore();
  readonly #delayed: DelayedPublishes;
  #uplinkCongested = false;
  readonly #store: SessionStore;
  /**
   * Set while shutting down with a store that keeps sessions: clients get this long to come
   * back (to any bridge) before their wills go out and sessions of expiry 0 end.
   */
  #restartGraceMs: number | undefined;
  /** Removes expired retained messages nobody asked for. */
  readonly #retainedSweep: NodeJS.Timeout;

  constructor(sink: UplinkSink, options: BrokerOptions, log: Logger, metrics: BridgeMetrics) {
    this.#sink = sink;
    this.#options = options;
    this.#queueRoom = new QueueRoom(options.slowSubscriberWaitMs ?? 0);
    this.#store = options.store ?? new MemorySessionStore();
    this.#retained = new RetainedStore(options.retainedLimits);
    this.#admission = new ConnectionAdmission(options.connectionLimits);
    this.log = log;
    this.metrics = metrics;
    metrics.brokerSource = { sessions: () => this.sysFigures(), traffic: this.traffic };
    this.refusals = new LimitRefusals(log, metrics);
    this.protocolErrors = new RateLimitedLog(log);
    const { maxDelayedMessages, maxDelayedPerClient } = options;
    this.#delayed = new DelayedPublishes(maxDelayedMessages, maxDelayedPerClient, (message) => {
      this.metrics.mqttDelayedMessages.set(this.#delayed.size);
      this.publish(message, undefined);
    });
    sink.onCongestion((congested) => {
      this.#uplinkCongested = congested;
      if (!congested) for (const connection of this.#connections) connection.releaseHeldPublishes();
    });
    // a new users and ACL file: every client is judged again in the same step
    options.authenticator.onReplaced(() => {
      this.reauthorize();
    });
    this.#retainedSweep = setInterval(() => {
      this.#retained.purgeExpired(Date.now());
      this.metrics.mqttRetainedMessages.set(this.#retained.size);
    }, RETAINED_SWEEP_MS).unref();
  }

  get subscriptions(): TopicTree<Subscription> {
    return this.#subscriptions;
  }

  get retained(): RetainedStore {
    return this.#retained;
  }

  /** The `$SYS/` messages, retained for new subscribers (see publishSys). */
  get sysRetained(): RetainedStore {
    return this.#sysRetained;
  }

  /** True while the uplink takes no more publishes (Kafka behind): connections hold them. */
  get uplinkCongested(): boolean {
    return this.#uplinkCongested;
  }

  /**
   * A socket was accepted (after its TLS handshake or WebSocket upgrade); `certificateName`: the
   * user name a verified client certificate gives (`tls.identity`). The connection limits are
   * checked now; a refused connection is told at its CONNECT, before any authentication.
   */
  accept(socket: Duplex, remoteAddress: string, certificateName?: string): void {
    this.traffic.socketsAccepted++;
    const address = addressKey(remoteAddress);
    const refusedBy = this.#admission.admit(address);
    if (refusedBy !== undefined) {
      this.refusals.refuse(refusedBy, { address }, 'connection refused');
      if (this.#refusedSockets >= MAX_REFUSED_SOCKETS) {
        socket.destroy();
        return;
      }
      this.#refusedSockets++;
    }
    const connection = new Connection(
      socket,
      remoteAddress,
      this,
      this.#options,
      refusedBy,
      certificateName,
    );
    this.#connections.add(connection);
  }

  /**
   * An accepted socket closed (`remoteAddress` as given to accept): what it held in the
   * connection counts is free again.
   */
  socketClosed(remoteAddress: string, refusedBy: AdmissionLimit | undefined): void {
    if (refusedBy === undefined) this.#admission.release(addressKey(remoteAddress));
    else this.#refusedSockets--;
  }

  /**
   * Whether the client id's session (kept, or of a connected client) was created by another
   * identity than `username` (undefined: anonymous). With authentication on, such a CONNECT is
   * refused, whatever its Clean Start: it may neither take over nor end another user's session.
   */
  ownedByAnother(clientId: string, username: string | undefined): boolean {
    const session = this.#sessions.get(clientId);
    return session !== undefined && session.identity.username !== username;
  }

  /**
   * Before CONNACK: the store makes this bridge the owner of the client id's session (undefined:
   * nothing to wait for). A session that comes from another bridge is taken in, offline, before
   * the connection registers.
   */
  claim(clientId: string, fresh: FreshSession): Promise<void> | undefined {
    const claimed = this.#store.claim(clientId, fresh);
    return claimed?.then((moved) => {
      if (moved === undefined) return;
      // what this bridge knew of it as another's (subscriptions only) gives way to all of it:
      // QoS 2 packet ids, will, expiry; and it is no longer remote
      const known = this.#sessions.get(clientId);
      if (known?.remote) this.#forget(known);
      if (!this.#sessions.has(clientId)) this.restoreSession(clientId, moved);
    });
  }

  /**
   * A session kept by the store (at start, the sessions this bridge had; or one that moved here)
   * is taken in, offline: subscriptions, QoS 2 packet ids, will and expiry, counted from when its
   * client went away (for one that was connected when its bridge stopped: from now, and its will
   * goes out after its delay, unless the client is back by then).
   */
  restoreSession(clientId: string, state: SessionState): void {
    const now = Date.now();
    const session = this.#newSession(clientId, state.assignedId);
    session.identity = state.identity;
    session.expiryInterval = state.expiryInterval;
    const authorized = this.#options.authenticator.authorize(state.identity, clientId);
    if (!authorized.ok) {
      this.#sessions.delete(clientId);
      this.#store.end(session);
      return;
    }
    session.permissions = authorized.principal.permissions;
    for (const [filter, subscription] of state.subscriptions) {
      if (!session.permissions.canSubscribe(filter)) continue;
      session.subscribe(filter, subscription);
      this.#subscriptions.subscribe(clientId, filter, subscription);
    }
    for (const id of state.qos2Received) session.qos2Received.set(id, 'stored');
    const disconnectedAt = state.online ? now : (state.disconnectedAt ?? now);
    const delay = (state.will?.properties?.willDelayInterval ?? 0) * 1000;
    const willAt = state.online ? now + delay : (state.willAt ?? now);
    this.#awaitReturn(session, state.identity.username, state.will, disconnectedAt, willAt);
  }

  /**
   * A CONNECT was accepted. A connection with the same client id is taken
   * over; the session is resumed unless `cleanStart` [MQTT-3.1.2-4..6], and its
   * subscriptions and waiting messages are judged again against the connection's
   * permissions. `assignedId`: the server assigned the client id.
   * Returns whether a session was present.
   */
  register(
    connection: Connection,
    cleanStart: boolean,
    expiryInterval: number,
    assignedId = false,
  ): boolean {
    const { clientId } = connection;
    const previous = this.#clients.get(clientId);
    // Registered first, so that the previous connection, closing, sees it was taken over.
    this.#clients.set(clientId, connection);
    if (previous) {
      // [MQTT-3.1.4-3] the existing connection is closed; MQTT 5 says why (0x8E).
      // Its will goes out now, unless it is delayed and the session is resumed.
      const will = previous.takeWill();
      previous.close('session taken over', ReasonCode.SessionTakenOver);
      const delayed = (will?.properties?.willDelayInterval ?? 0) > 0;
      if (will && (cleanStart || !delayed)) this.#publishWill(clientId, previous.username, will);
    }
    this.#cancelPendingEnd(clientId, { sendWill: cleanStart });
    let session = this.#sessions.get(clientId);
    const present = session !== undefined && !cleanStart;
    if (session && cleanStart) this.#endSession(session);
    if (!present) session = this.#newSession(clientId, assignedId);
    const current = session as Session;
    current.identity = connection.identity;
    current.expiryInterval = expiryInterval;
    current.will = connection.will;
    current.willAt = undefined;
    current.disconnectedAt = undefined;
    if (present) this.#rejudge(current, connection.permissions);
    else current.permissions = connection.permissions;
    connection.session = current;
    connection.connectedAt = Date.now();
    connection.cleanStart = cleanStart;
    this.#store.save(current);
    this.metrics.mqttConnections.set(this.#clients.size);
    this.metrics.mqttConnectionsTotal.inc();
    return present;
  }

  /** The session's connection is up: what the store keeps for it is fed to it. */
  sessionAttached(session: Session): void {
    this.#store.attach(session);
  }

  /**
   * The session's state changed (subscriptions, QoS 2 packet ids): the store keeps it; `done`
   * once kept (at once without a store).
   */
  sessionChanged(session: Session, done?: () => void): void {
    if (this.#sessions.get(session.clientId) === session) this.#store.save(session, done);
    else done?.();
  }

  /**
   * Another bridge owns the client id's session now: its connection here (if any) is closed
   * (MQTT 5: DISCONNECT 0x8E) without its will (the new owner has it), and the session is
   * forgotten here, not ended.
   */
  lostSession(clientId: string): void {
    const connection = this.#clients.get(clientId);
    if (connection) {
      connection.takeWill();
      this.#clients.delete(clientId);
      this.metrics.mqttConnections.set(this.#clients.size);
      connection.close('session taken over by another bridge', ReasonCode.SessionTakenOver);
    }
    this.#cancelPendingEnd(clientId, { sendWill: false });
    const session = this.#sessions.get(clientId);
    if (session && !session.remote) this.#forget(session);
  }

  /**
   * A session another bridge owns, new or changed: known here with its identity and
   * subscriptions, so that messages published here reach it (through the store), shared
   * groups count it, and its client id stays its user's.
   */
  remoteSession(clientId: string, state: SessionState): void {
    let session = this.#sessions.get(clientId);
    if (session && !session.remote) this.lostSession(clientId);
    session = this.#sessions.get(clientId);
    if (session === undefined) {
      session = this.#newSession(clientId, state.assignedId);
    } else {
      this.#subscriptions.unsubscribeAll(clientId);
      session.clearSubscriptions();
    }
    session.remote = { online: state.online };
    session.identity = state.identity;
    session.expiryInterval = state.expiryInterval;
    const authorized = this.#options.authenticator.authorize(state.identity, clientId);
    session.permissions = authorized.ok ? authorized.principal.permissions : DENY_RECEIVING;
    for (const [filter, subscription] of state.subscriptions) {
      session.subscribe(filter, subscription);
      this.#subscriptions.subscribe(clientId, filter, subscription);
    }
  }

  /** A session of a gone bridge is this bridge's now: taken in offline (will and expiry run here). */
  adopted(clientId: string, state: SessionState): void {
    const known = this.#sessions.get(clientId);
    if (known?.remote) this.#forget(known);
    if (!this.#sessions.has(clientId)) this.restoreSession(clientId, state);
  }

  /** A session another bridge owned has ended. */
  remoteEnded(clientId: string): void {
    const session = this.#sessions.get(clientId);
    if (session?.remote) this.#forget(session);
  }

  /** The session is no longer this bridge's concern (not ended: it lives on elsewhere). */
  #forget(session: Session): void {
    const { clientId } = session;
    if (this.#sessions.get(clientId) === session) this.#sessions.delete(clientId);
    this.#subscriptions.unsubscribeAll(clientId);
    session.detach();
    session.clear();
  }

  #newSession(clientId: string, assignedId: boolean): Session {
    const session = new Session(
      clientId,
      this.#options.maxQueuedMessages,
      this.#drops,
      this.#queueRoom,
    );
    session.assignedId = assignedId;
    this.#sessions.set(clientId, session);
    return session;
  }

  connectionClosed(connection: Connection, will: Will | undefined): void {
    this.#connections.delete(connection);
    // Never accepted, or taken over: the session belongs to the newer connection.
    if (this.#clients.get(connection.clientId) !== connection) return;
    this.#clients.delete(connection.clientId);
    this.metrics.mqttConnections.set(this.#clients.size);
    const session = connection.session;
    session.detach();
    this.#store.detach(session);
    const now = Date.now();
    let willAt = now + (will?.properties?.willDelayInterval ?? 0) * 1000;
    const grace = this.#restartGraceMs;
    if (grace !== undefined) {
      // a bridge shutting down (a rolling restart): the client has `grace` to come back to
      // another bridge, or to this one restarted, before its will goes out or its session ends
      willAt = Math.max(willAt, now + grace);
      if (session.expiryInterval === 0) session.expiryInterval = Math.ceil(grace / 1000);
    }
    this.#awaitReturn(session, connection.username, will, now, willAt);
  }

  /**
   * Shutdown with a store that keeps sessions: the connections closed from now on keep their
   * wills and sessions for `graceMs` (see connectionClosed).
   */
  keepSessionsForRestart(graceMs: number): void {
    this.#restartGraceMs = graceMs;
  }

  /**
   * A publish from a client (or a will), through the uplink to Kafka and to
   * matching local subscribers. A QoS 1/2 publish (one with `onSettled`) is
   * accepted — retained, delivered locally, acknowledged — only once Kafka
   * holds every record it maps to, so subscribers never see a message its
   * publisher was told failed, nor a retransmission of it twice. QoS 0 is
   * delivered at once. `onSettled` and (for QoS 0) the return value tell how many sessions the
   * message went to (the admin API reports it).
   */
  publish(
    message: BrokerMessage,
    onSettled: ((outcome: UplinkOutcome, delivered: number) => void) | undefined,
  ): number {
    const delay = parseDelayedTopic(message.topic);
    if (delay !== undefined) {
      onSettled?.(this.#delay(message, delay), 0);
      return 0;
    }
    const overLimit = message.retain ? this.#retained.overLimit(message) : undefined;
    if (overLimit !== undefined) {
      // retained.maxMessages / maxBytes: refused whole, not half taken (MQTT 5: 0x97)
      this.metrics.mqttRetainedRefused.inc();
      this.refusals.refuse(
        overLimit,
        { clientId: message.origin.clientId, topic: message.topic },
        'retained publish refused',
      );
      onSettled?.(
        {
          kind: 'failed',
          reasonCode: ReasonCode.QuotaExceeded,
          reason: 'no room for another retained message (retained.maxMessages, retained.maxBytes)',
          final: true,
        },
        0,
      );
      return 0;
    }
    const uplink = toUplink(message);
    if (onSettled === undefined) {
      const delivered = this.#accept(message);
      this.#whenPersisted(message, IGNORE);
      this.#sink.send(uplink, undefined);
      return delivered;
    }
    this.#sink.send(uplink, (outcome) => {
      if (outcome.kind === 'failed') {
        onSettled(outcome, 0);
        return;
      }
      const delivered = this.#accept(message);
      // "no matching subscribers" only when neither a rule nor a subscriber took it
      const result: UplinkOutcome =
        outcome.kind === 'unmatched' && delivered > 0 ? { kind: 'stored' } : outcome;
      // a retained QoS 1/2 publish is acknowledged once its retained state is kept too (no
      // closure for the others: this runs for every publish)
      if (this.#persists(message)) {
        this.#whenPersisted(message, () => {
          onSettled(result, delivered);
        });
      } else {
        onSettled(result, delivered);
      }
    });
    return 0;
  }

  /** A retained message (or its clearing) from outside (persisted, another bridge): stored, not delivered. */
  restoreRetained(message: BrokerMessage): void {
    // each bridge publishes its own $SYS figures: another's (or an old client's) are not taken in
    if (isSysTopic(message.topic)) return;
    if (!this.#retained.store(message)) this.metrics.mqttRetainedRefused.inc();
    this.metrics.mqttRetainedMessages.set(this.#retained.size);
  }

  /**
   * A `$SYS/` message of this bridge (see sys-topics.ts): retained here (in a store of its own,
   * outside the clients' retained limits), so that new subscribers get the current value, and
   * delivered at QoS 0 to the connected clients of this bridge whose
   * subscriptions match and who may read it. Never to the uplink, the retained log (persistRetained)
   * or the sessions of other bridges: each bridge publishes its own figures.
   */
  publishSys(topic: string, payload: Buffer): void {
    const message: BrokerMessage = {
      topic,
      payload,
      qos: 0,
      retain: true,
      properties: {},
      expiresAt: undefined,
      origin: SYS_ORIGIN,
    };
    this.#sysRetained.store(message);
    this.#deliverLocally(message, undefined, true);
  }

  /**
   * The figures of `$SYS/broker/clients/...`, subscriptions and stored messages, over this
   * bridge's own sessions (not those it knows of other bridges). Walks the sessions: called once
   * per `sys.interval`, never per message.
   */
  sysFigures(): SysFigures {
    let sessions = 0;
    let subscriptions = 0;
    let queued = 0;
    for (const session of this.#sessions.values()) {
      if (session.remote !== undefined) continue;
      sessions++;
      subscriptions += session.subscriptions.size;
      queued += session.queued;
    }
    return {
      connected: this.#clients.size,
      sessions,
      subscriptions,
      retained: this.#retained.size + this.#sysRetained.size,
      queued,
    };
  }

  /**
   * A message from Kafka (downlink) for the sessions subscribed to its topic:
   * retained if it says so, delivered like a publish, and not sent to the
   * uplink. `settle` is called once every session it went to is done with it
   * (acknowledged, written at QoS 0, or dropped) — at once when none matched.
   * Returns the number of sessions it went to.
   */
  publishDownlink(message: BrokerMessage, settle: () => void): number {
    if (!this.#persists(message)) return this.#accept(message, settle);
    // the record is settled (its offset committed) once its retained state is kept too
    const settleBoth = settleAfter(2, settle);
    const delivered = this.#accept(message, settleBoth);
    this.#whenPersisted(message, settleBoth);
    return delivered;
  }

  /**
   * Undefined when a downlink message for `topic` may be delivered now. Otherwise a connected
   * subscriber's queue is full and it is still taking messages (not stalled): the promise
   * resolves when a full queue has room again or after `ms`, and the caller asks again. So a
   * burst from Kafka waits for slow devices instead of overflowing their queues.
   */
  downlinkRoom(topic: string, ms: number): Promise<void> | undefined {
    if (this.#queueRoom.empty) return undefined;
    const { subscribers, shared } = this.#subscriptions.match(topic);
    const holdsUp = (clientId: string): boolean => {
      const session = this.#sessions.get(clientId);
      return session !== undefined && this.#queueRoom.holdsUp(session);
    };
    const waits =
      subscribers.some(({ clientId }) => holdsUp(clientId)) ||
      // a shared group's message goes to one member: wait only when none has room
      shared.some(
        ({ members }) => members.length > 0 && members.every(({ clientId }) => holdsUp(clientId)),
      );
    return waits ? this.#queueRoom.whenFreed(ms) : undefined;
  }

  /**
   * Whether a downlink reply may go to `topic` on behalf of the requesting client `clientId`
   * (a device chose the topic as its Response Topic; undefined: the reply names no client).
   * The client id must name a session here (connected, or kept), and the topic must be one
   * that client may subscribe to, or its Response Information (`mqtt.responseTopicPrefix` +
   * client id) or under it. Once allowed, the reply goes to every subscriber of the topic, as
   * any downlink message does.
   */
  checkReply(clientId: string | undefined, topic: string): ReplyCheck {
    // Authentication off: every client may subscribe to everything, so there is nothing to
    // judge; replies go out unchecked, as before reply rules, whoever (if anyone) asked.
    if (!this.#options.authenticator.enabled) return 'allowed';
    if (clientId === undefined) return 'unknown-client';
    const session = this.#sessions.get(clientId);
    if (session === undefined) return 'unknown-client';
    const prefix = this.#options.responseTopicPrefix;
    const base = `${prefix}${clientId}`;
    if (prefix !== '' && (topic === base || topic.startsWith(`${base}/`))) return 'allowed';
    // a connected client's rights are its connection's (re-authentication may change them)
    const permissions = this.#clients.get(clientId)?.permissions ?? session.permissions;
    return permissions.canSubscribe(topic) ? 'allowed' : 'not-allowed';
  }

  /** Retains and delivers an accepted publish; returns the number of sessions it went to. */
  #accept(message: BrokerMessage, settle?: () => void): number {
    if (message.retain) {
      // [MQTT-3.3.1-5]; a message that no longer fits (others came first) is delivered only
      if (!this.#retained.store(message)) this.metrics.mqttRetainedRefused.inc();
      this.metrics.mqttRetainedMessages.set(this.#retained.size);
    }
    return this.#deliverLocally(message, settle);
  }

  /** Runs `done` once a retained message's change is persisted; at once for other messages. */
  #whenPersisted(message: BrokerMessage, done: () => void): void {
    const persist = this.#options.persistRetained;
    if (message.retain && persist) persist(message, done);
    else done();
  }

  /** Whether the message changes retained state that is kept (retained.store kafka). */
  #persists(message: BrokerMessage): boolean {
    return message.retain && this.#options.persistRetained !== undefined;
  }

  /**
   * Hands a message to every session with a matching subscription: once per
   * session at the highest granted QoS with every subscription identifier
   * [MQTT-3.3.4-2, 3.3.4-3], and to one member of each shared group. Returns
   * the number of sessions it went to; `settle` runs once all are done with it. `onlyHere`:
   * only to connected sessions of this bridge (`$SYS/` messages: never through the store).
   */
  #deliverLocally(message: BrokerMessage, settle?: () => void, onlyHere = false): number {
    if (this.#subscriptions.size === 0) {
      // nobody subscribes to anything (a pure uplink): no topic to split and match
      settle?.();
      return 0;
    }
    const { subscribers, shared } = this.#subscriptions.match(message.topic);
    if (subscribers.length === 0 && shared.length === 0) {
      settle?.();
      return 0;
    }
    const perSession = new Map<string, Delivery>();
    for (const { clientId, value } of subscribers) {
      // [MQTT-3.8.3-3] No Local: not back to the publisher
      if (value.noLocal && clientId === message.origin.clientId) continue;
      const qos = Math.min(message.qos, value.qos) as Delivery['qos'];
      // [MQTT-3.3.1-12, 3.3.1-13] Retain As Published
      const retain = value.retainAsPublished && message.retain;
      const ids = value.identifier !== undefined ? [value.identifier] : [];
      const existing = perSession.get(clientId);
      if (existing) {
        existing.qos = Math.max(existing.qos, qos) as Delivery['qos'];
        existing.retain ||= retain;
        existing.subscriptionIds.push(...ids);
      } else {
        perSession.set(clientId, { message, qos, retain, subscriptionIds: ids });
      }
    }
    const targets: Array<[Session, Delivery]> = [];
    for (const [clientId, delivery] of perSession) {
      const session = this.#sessions.get(clientId);
      if (!session || (onlyHere && !isHere(session))) continue;
      // As Mosquitto's read ACL: every message is checked against what the subscriber may receive.
      if (session.permissions.canReceive(message.topic)) targets.push([session, delivery]);
      else this.metrics.mqttMessagesDropped.inc({ reason: 'not-authorized' });
    }
    for (const group of shared) {
      const target = this.#sharedTarget(message, group);
      if (target && (!onlyHere || isHere(target[0]))) targets.push(target);
    }
    if (settle) settleTogether(targets, settle);
    for (const [session, delivery] of targets) this.#deliverTo(session, delivery);
    return targets.length;
  }

  /** To the session, or to the store that keeps its messages (QoS 1/2) and feeds them to it. */
  #deliverTo(session: Session, delivery: Delivery): void {
    const local = session.remote === undefined;
    if ((delivery.qos === 0 && local) || !this.#store.keepsMessages(session)) {
      const { settle } = delivery;
      if (settle === undefined || !this.#store.keepsSessions) {
        session.deliver(delivery);
        return;
      }
      // a session that ends with its connection: handed over is done with (see SessionStore)
      session.deliver({ ...delivery, settle: undefined });
      settle();
      return;
    }
    this.#store.enqueue(session, delivery, (kept) => {
      if (!kept) this.metrics.mqttMessagesDropped.inc({ reason: 'not-kept' });
      delivery.settle?.();
    });
  }

  /** The member of a shared group that gets the message next, and its delivery. */
  #sharedTarget(
    message: BrokerMessage,
    group: SharedMatch<Subscription>,
  ): [Session, Delivery] | undefined {
    const member = this.#pickSharedMember(group, message.topic);
    const session = member && this.#sessions.get(member.clientId);
    if (!member || !session) return undefined;
    return [
      session,
      {
        message,
        qos: Math.min(message.qos, member.value.qos) as Delivery['qos'],
        retain: member.value.retainAsPublished && message.retain,
        subscriptionIds: member.value.identifier !== undefined ? [member.value.identifier] : [],
        shared: { group: group.group, filter: group.filter },
      },
    ];
  }

  /** `$delay/{seconds}/{topic}`: taken now, published to `{topic}` later. */
  #delay(
    message: BrokerMessage,
    delay: NonNullable<ReturnType<typeof parseDelayedTopic>>,
  ): UplinkOutcome {
    if ('problem' in delay) {
      return {
        kind: 'failed',
        reasonCode: ReasonCode.TopicNameInvalid,
        reason: delay.problem,
        final: true,
      };
    }
    const scheduled = this.#delayed.schedule({ ...message, topic: delay.topic }, delay.seconds);
    if (scheduled !== 'scheduled') {
      this.metrics.mqttDelayedRefused.inc();
      this.refusals.refuse(
        scheduled,
        { clientId: message.origin.clientId, topic: message.topic },
        'delayed publish refused',
      );
      const waiting =
        scheduled === 'mqtt.maxDelayedMessages'
          ? `${this.#options.maxDelayedMessages} delayed messages are waiting already`
          : `${this.#options.maxDelayedPerClient} delayed messages of this client are waiting already`;
      return { kind: 'failed', reasonCode: ReasonCode.QuotaExceeded, reason: waiting };
    }
    this.metrics.mqttDelayedMessages.set(this.#delayed.size);
    return { kind: 'stored' };
  }

  /** Shutdown, first step: no connection reads any more input. */
  stopReading(): void {
    for (const connection of this.#connections) connection.stopReading();
    // acknowledgements are not read any more: what the store keeps waits there for the next
    // connection (here after a restart, or on another bridge) rather than being sent now and
    // sent again then
    for (const connection of this.#clients.values()) this.#store.detach(connection.session);
  }

  /** Closes every connection; MQTT 5 clients get DISCONNECT with the reason code. */
  disconnectAll(reason: string, reasonCode: number, serverReference?: string): void {
    for (const connection of this.#connections)
      connection.close(reason, reasonCode, serverReference);
  }

  /**
   * The users and ACL file changed (`Authenticator.replace()`): every client is judged again
   * against it, in one synchronous step. A connected client whose user is gone, or who may no
   * longer connect (anonymous clients refused, client id outside its patterns), is disconnected
   * (MQTT 5: DISCONNECT 0x87 Not authorized) without its will, and its session ends; the others
   * get their new permissions at once, lose the subscriptions and waiting messages these no
   * longer allow, and a will they may no longer publish. Kept sessions of clients not connected
   * are judged the same way. Returns the number of clients disconnected and sessions ended.
   */
  reauthorize(): { disconnected: number; sessionsEnded: number } {
    const { authenticator } = this.#options;
    let disconnected = 0;
    let sessionsEnded = 0;
    const judge = (session: Session): Permissions | undefined => {
      const result = authenticator.authorize(session.identity, session.clientId);
      if (!result.ok) return undefined;
      const { clientId, assignedId } = session;
      return authenticator.allowsClientId(session.identity, clientId, assignedId)
        ? result.principal.permissions
        : undefined;
    };
    for (const connection of [...this.#clients.values()]) {
      const permissions = judge(connection.session);
      if (permissions === undefined) {
        connection.takeWill();
        // the session goes too, whatever its expiry: it belongs to an identity that is gone
        connection.session.expiryInterval = 0;
        this.log.info(
          { clientId: connection.clientId, username: connection.username },
          'disconnecting a client the users and ACL file no longer allows',
        );
        connection.close('not authorized any more', ReasonCode.NotAuthorized);
        disconnected++;
        continue;
      }
      connection.permissions = permissions;
      if (connection.will && !permissions.canPublish(connection.will.topic)) connection.takeWill();
      this.#rejudge(connection.session, permissions);
    }
    for (const session of [...this.#sessions.values()]) {
      if (session.remote) {
        // its owner judges it; here it only decides what it may receive through this bridge
        session.permissions = judge(session) ?? DENY_RECEIVING;
        continue;
      }
      if (session.online) continue;
      const permissions = judge(session);
      if (permissions !== undefined) {
        this.#rejudge(session, permissions);
        continue;
      }
      this.#cancelPendingEnd(session.clientId, { sendWill: false });
      this.#endSession(session);
      sessionsEnded++;
    }
    return { disconnected, sessionsEnded };
  }

  /**
   * A session's client has (new) permissions: subscriptions they no longer allow are removed,
   * with the messages waiting that the client may no longer receive.
   */
  #rejudge(session: Session, permissions: Permissions): void {
    session.permissions = permissions;
    const removed: string[] = [];
    for (const filter of [...session.subscriptions.keys()]) {
      if (permissions.canSubscribe(filter)) continue;
      this.#subscriptions.unsubscribe(session.clientId, filter);
      session.unsubscribe(filter);
      removed.push(filter);
    }
    const dropped = session.withdraw(({ message, shared }) =>
      permissions.canReceive(message.topic, shared?.group),
    );
    if (removed.length > 0 || dropped > 0) {
      this.log.info(
        { clientId: session.clientId, removed, dropped },
        'subscriptions the ACL no longer allows removed',
      );
    }
  }

  /** Stops every timer (session expiry, delayed wills) so the process can exit. */
  clearTimers(): void {
    clearInterval(this.#retainedSweep);
    this.keepAlive.stop();
    this.#delayed.clear();
    for (const pending of this.#pendingEnds.values()) {
      pending.expiry?.cancel();
      pending.will?.cancel();
    }
    this.#pendingEnds.clear();
  }

  /** Round robin over the members that may receive `topic`, preferring those online. */
  #pickSharedMember(
    group: SharedMatch<Subscription>,
    topic: string,
  ): Match<Subscription> | undefined {
    const allowed = group.members.filter((member) =>
      this.#sessions.get(member.clientId)?.permissions.canReceive(topic, group.group),
    );
    const online = allowed.filter((member) => this.#sessions.get(member.clientId)?.online);
    // a member whose full queue the downlink waits for gets nothing more while others have room
    const withRoom = online.filter(
      (member) => !this.#queueRoom.holdsUp(this.#sessions.get(member.clientId) as Session),
    );
    const candidates = withRoom.length > 0 ? withRoom : online.length > 0 ? online : allowed;
    if (candidates.length === 0) return undefined;
    return candidates[group.cursor.turn++ % candidates.length];
  }

  /**
   * The client is gone (since `disconnectedAt`): its session ends then (expiry 0) or after the
   * Session Expiry Interval; the will goes out at `willAt` or when the session ends, whichever
   * is first [MQTT-3.1.3-9]. The store keeps the session as it is now.
   */
  #awaitReturn(
    session: Session,
    username: string | undefined,
    will: Will | undefined,
    disconnectedAt: number,
    willAt: number,
  ): void {
    const { clientId } = session;
    const now = Date.now();
    session.disconnectedAt = disconnectedAt;
    session.will = will;
    session.willAt = will ? willAt : undefined;
    const publishWill = will
      ? () => {
          session.will = undefined;
          session.willAt = undefined;
          this.#publishWill(clientId, username, will);
        }
      : undefined;
    const expiresAt =
      session.expiryInterval === NEVER_EXPIRES
        ? undefined
        : disconnectedAt + session.expiryInterval * 1000;
    if (expiresAt !== undefined && expiresAt <= now) {
      this.#endSession(session);
      publishWill?.();
      return;
    }
    const pending: PendingEnd = { expiry: undefined, will: undefined, publishWill };
    if (expiresAt !== undefined) {
      pending.expiry = new LongTimer(expiresAt - now, () => {
        this.#pendingEnds.delete(clientId);
        pending.will?.cancel();
        this.#endSession(session);
        pending.publishWill?.();
      });
    }
    if (publishWill && willAt <= now) {
      publishWill();
      pending.publishWill = undefined;
    } else if (publishWill) {
      pending.will = new LongTimer(willAt - now, () => {
        pending.publishWill = undefined;
        publishWill();
        this.#store.save(session);
      });
    }
    this.#pendingEnds.set(clientId, pending);
    this.#store.save(session);
  }

  /**
   * The client is back: its session no longer expires, and a delayed will is
   * not sent [MQTT-3.1.3-9] — unless the new connection starts clean, which
   * ends the old session and so sends the will now.
   */
  #cancelPendingEnd(clientId: string, { sendWill }: { sendWill: boolean }): void {
    const pending = this.#pendingEnds.get(clientId);
    if (!pending) return;
    this.#pendingEnds.delete(clientId);
    pending.expiry?.cancel();
    pending.will?.cancel();
    if (sendWill) pending.publishWill?.();
  }

  /**
   * The session is over. Messages it got through a shared subscription and
   * never received go to another member of their group [MQTT-4.8.2-4 (5.0)].
   */
  #endSession(session: Session): void {
    this.#store.end(session);
    this.#subscriptions.unsubscribeAll(session.clientId);
    const undelivered = session.takeUndeliveredShared();
    session.clear();
    if (this.#sessions.get(session.clientId) === session) this.#sessions.delete(session.clientId);
    for (const { message, shared, settle } of undelivered) {
      const group = this.#subscriptions
        .match(message.topic)
        .shared.find((match) => match.group === shared?.group && match.filter === shared.filter);
      const target = group && this.#sharedTarget(message, group);
      if (!target) {
        settle?.();
        continue;
      }
      const [member, delivery] = target;
      member.deliver({ ...delivery, ...(settle ? { settle } : {}) });
    }
  }

  /** [MQTT-3.1.2-8] the will is published when the connection ends without DISCONNECT. */
  #publishWill(clientId: string, username: string | undefined, will: Will): void {
    const properties = will.properties ?? {};
    this.publish(
      {
        topic: will.topic,
        payload: typeof will.payload === 'string' ? Buffer.from(will.payload) : will.payload,
        qos: will.qos ?? 0,
        retain: will.retain ?? false,
        properties: pickMessageProperties(properties),
        expiresAt: expiryFrom(properties.messageExpiryInterval, Date.now()),
        origin: { clientId, username },
      },
      (outcome) => {
        if (outcome.kind === 'failed') {
          this.log.warn({ clientId, reason: outcome.reason }, 'will not stored in Kafka');
        }
      },
    );
  }

  /**
   * The admin API's view of the sessions this bridge owns (connected, or kept for their client),
   * taken now. Sessions this bridge only knows of (another bridge of the fleet owns them) are
   * left out: each bridge answers for its own.
   */
  clientsSnapshot(): ClientSnapshot[] {
    const snapshots: ClientSnapshot[] = [];
    for (const session of this.#sessions.values()) {
      if (session.remote === undefined) snapshots.push(this.#snapshotOf(session));
    }
    return snapshots;
  }

  /** One client's snapshot (see clientsSnapshot); undefined when this bridge owns no such session. */
  clientSnapshot(clientId: string): ClientSnapshot | undefined {
    const session = this.#sessions.get(clientId);
    if (session === undefined || session.remote !== undefined) return undefined;
    return this.#snapshotOf(session);
  }

  /**
   * The admin API's disconnect: the client's connection is closed (MQTT 5: DISCONNECT 0x98
   * Administrative action) and its will goes out, as for any connection the server closes
   * [MQTT-3.1.2-8]. `discardSession`: the session ends too, as a clean-start takeover ends it
   * (waiting messages dropped, shared ones passed on, the store forgets it). Returns false when
   * this bridge owns no session of that client id.
   */
  disconnectClient(clientId: string, discardSession: boolean): boolean {
    const session = this.#sessions.get(clientId);
    if (session === undefined || session.remote !== undefined) return false;
    const connection = this.#clients.get(clientId);
    if (connection) {
      // expiry 0: connectionClosed (called by close) ends the session at once, will included
      if (discardSession) session.expiryInterval = 0;
      connection.close('disconnected by an administrator', ReasonCode.AdministrativeAction);
    } else if (discardSession) {
      this.#cancelPendingEnd(clientId, { sendWill: true });
      this.#endSession(session);
    }
    return true;
  }

  #snapshotOf(session: Session): ClientSnapshot {
    const connection = this.#clients.get(session.clientId);
    return {
      clientId: session.clientId,
      username: connection ? connection.username : session.identity.username,
      connection: connection && {
        address: connection.remoteAddress,
        protocolVersion: connection.protocolVersion,
        keepAlive: connection.keepAlive,
        cleanStart: connection.cleanStart,
        connectedAt: connection.connectedAt,
      },
      sessionExpiry: session.expiryInterval,
      disconnectedAt: session.disconnectedAt,
      subscriptions: session.subscriptions,
      inflight: session.inflight,
      queued: session.queued,
    };
  }
}

/** One session of this bridge and its connection, as the admin API shows them. */
export interface ClientSnapshot {
  clientId: string;
  username: string | undefined;
  /** Undefined while the client is not connected. */
  connection:
    | {
        address: string;
        protocolVersion: Connection['protocolVersion'];
        /** Seconds; 0: none. */
        keepAlive: number;
        cleanStart: boolean;
        /** Ms since the epoch. */
        connectedAt: number;
      }
    | undefined;
  /** Session Expiry Interval in seconds; NEVER_EXPIRES for ever. */
  sessionExpiry: number;
  /** Ms since the epoch; undefined while connected. */
  disconnectedAt: number | undefined;
  /** The session's own map, by filter as the client sent it: read it at once, never change it. */
  subscriptions: ReadonlyMap<string, Subscription>;
  inflight: number;
  queued: number;
}

/**
 * A session of this bridge whose client is connected. (QoS 0 to an offline one would only be
 * dropped, and counted in the very `$SYS/broker/publish/messages/dropped` it carries.)
 */
function isHere(session: Session): boolean {
  return session.remote === undefined && session.online;
}

/** Gives each delivery a share of `settle`, which runs when the last of them settles. */
function settleTogether(targets: Array<[Session, Delivery]>, settle: () => void): void {
  const settleOne = settleAfter(targets.length, settle);
  for (const [, delivery] of targets) delivery.settle = settleOne;
}

/** The uplink's view of a message. */
function toUplink(message: BrokerMessage): UplinkPublish {
  return {
    topic: message.topic,
    payload: message.payload,
    qos: message.qos,
    retain: message.retain,
    clientId: message.origin.clientId,
    username: message.origin.username,
    userProperties: userPropertyList(message.properties.userProperties),
    contentType: message.properties.contentType,
    responseTopic: message.properties.responseTopic,
    correlationData: message.properties.correlationData,
    payloadFormatIndicator: message.properties.payloadFormatIndicator,
  };
}

const NO_USER_PROPERTIES: ReadonlyArray<readonly [string, string]> = Object.freeze([]);

/** mqtt-packet groups repeated user properties by name; flatten to (name, value) pairs. */
function userPropertyList(
  properties: UserProperties | undefined,
): ReadonlyArray<readonly [string, string]> {
  if (!properties) return NO_USER_PROPERTIES;
  const list: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(properties)) {
    if (Array.isArray(value)) for (const item of value) list.push([name, item]);
    else list.push([name, value]);
  }
  return list;
}

import type { IConnectPacket, IPublishPacket, Packet, QoS } from 'mqtt-packet';
import { unproved, type Identity } from '../auth/identity.js';
import { ALLOW_ALL, type Permissions } from '../auth/permissions.js';
import { isExpired, secondsToLive, type BrokerMessage } from './message.js';
import type { QueueRoom } from './queue-room.js';
import { RetainedReplay } from './retained-replay.js';
import type { RetainedStore } from './retained.js';
import type { UplinkOutcome } from './uplink-sink.js';

type Will = NonNullable<IConnectPacket['will']>;

/** Session Expiry Interval meaning "never" [MQTT-3.1.2-...]; also what 3.1.1 clean=0 gets. */
export const NEVER_EXPIRES = 0xffffffff;

/** The options of one subscription (MQTT 5 §3.8.3.1). */
export interface Subscription {
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  /** MQTT 5 Subscription Identifier, if the SUBSCRIBE carried one. */
  identifier: number | undefined;
}

/** One message for one session, with the QoS and flags its subscription(s) give it. */
export interface Delivery {
  message: BrokerMessage;
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[];
  /** The shared subscription it was chosen through, so it can go to another member. */
  shared?: { group: string; filter: string };
  /**
   * Called once when the session is done with the message: acknowledged
   * (PUBACK, PUBCOMP, or an error PUBREC), written at QoS 0, or dropped.
   */
  settle?: () => void;
  /** The packet id to send it with, when free (a kept message keeps its id across restarts). */
  packetId?: number;
  /** It may have been sent before (a kept message sent again after a restart): DUP. */
  dup?: boolean;
  /**
   * QoS 2: called at PUBREC with the sending of PUBREL, which it runs once the release is kept
   * (after PUBREL the client forgets the packet id, so a copy sent again would be a new message).
   */
  released?: (sendPubrel: () => void) => void;
}

/** The message of a restored QoS 2 release: only its packet id is ever sent again. */
const RELEASED_PLACEHOLDER: BrokerMessage = {
  topic: '',
  payload: Buffer.alloc(0),
  qos: 2,
  retain: false,
  properties: {},
  expiresAt: undefined,
  origin: { clientId: '', username: undefined },
};

/** Why a message for a session was not delivered. */
export type DropReason =
  'expired' | 'queue-full' | 'offline-qos0' | 'too-large' | 'slow-subscriber' | 'not-authorized';

/** What a session needs from the connection it is attached to. */
export interface SessionLink {
  readonly protocolVersion: 3 | 4 | 5;
  /** The client's Receive Maximum: QoS 1/2 publishes it accepts unacknowledged. */
  readonly receiveMaximum: number;
  /**
   * True while the client reads slower than it is written to: hold QoS 1/2, drop QoS 0 (but
   * hold retained messages a subscription asked for). Once it reads again, the connection calls
   * {@link Session.resumeDelivery}.
   */
  readonly writeCongested: boolean;
  /** Writes a PUBLISH; false when it was dropped as larger than the client allows. */
  sendPublish(packet: IPublishPacket): boolean;
  send(packet: Packet): void;
}

interface Inflight {
  delivery: Delivery;
  awaiting: 'puback' | 'pubrec' | 'pubcomp';
  /** Sent on the current connection (false: waiting for Receive Maximum room to be resent). */
  sent: boolean;
}

/**
 * The empty map a session's maps start as, shared by all sessions: never written (the session
 * makes its own before the first entry), only read and deleted from.
 */
const NONE = new Map<never, never>();

/** The queue of a session with none waiting, shared (frozen) until the first. */
const NO_DELIVERIES: Delivery[] = Object.freeze([]) as unknown as Delivery[];

/** Where a session counts the messages it drops (one for all sessions: no closure each). */
export interface DropCounter {
  dropped(reason: DropReason): void;
}

/**
 * A client's session: subscriptions, QoS 1/2 messages in flight to it, the
 * queue of messages waiting for it (offline, or beyond its Receive Maximum),
 * the retained messages its new subscriptions matched that are not sent yet,
 * and the QoS 2 packet ids it sent that are not released yet. Outlives its
 * connection when the session is persistent.
 */
export class Session {
  readonly clientId: string;
  /** By topic filter as the client sent it (a shared empty map until the first). */
  #subscriptions: Map<string, Subscription> = NONE;
  #qos2Received: Map<number, 'producing' | 'stored'> | undefined;
  #qos2Waiting: Map<number, Array<(outcome: UplinkOutcome) => void>> | undefined;
  /** Seconds the session outlives its connection; NEVER_EXPIRES for ever. */
  expiryInterval = 0;
  /**
   * The identity of the session's last connection. Its user name is the session's owner
   * (undefined: anonymous): only that user may resume the session or take its client id over
   * while it lasts.
   */
  identity: Identity = unproved(undefined);
  /** The client id was assigned by the server (the client sent none). */
  assignedId = false;
  /**
   * What the client may receive: the permissions of its last connection, judged again when the
   * ACL changes. Every message delivered is checked against them.
   */
  permissions: Permissions = ALLOW_ALL;
  /** The will of the current connection, or of the last one while it waits for its delay. */
  will: Will | undefined;
  /** When a waiting will goes out (ms since the epoch); undefined while online or none waits. */
  willAt: number | undefined;
  /** When the client went away (ms since the epoch); undefined while it is connected. */
  disconnectedAt: number | undefined;
  /**
   * Another bridge of the fleet owns the session (sessions.store kafka): this one knows its
   * subscriptions, to route messages to it through the store, and whether its client is
   * connected there.
   */
  remote: { online: boolean } | undefined;
  #link: SessionLink | undefined;
  /** By packet id (a shared empty map until the first: most idle sessions have none). */
  #inflight: Map<number, Inflight> = NONE;
  /** In-flight entries not sent on the current connection. */
  #unsent = 0;
  #queue: Delivery[] = NO_DELIVERIES;
  /**
   * Retained messages for new subscriptions, sent before anything queued after them; made at
   * the first retained messages a subscription matched.
   */
  #retainedReplay: RetainedReplay | undefined;
  #nextPacketId = 1;
  readonly #maxQueued: number;
  readonly #drops: DropCounter;
  /** Where a connected session tells the downlink its queue is full, and has room again. */
  readonly #room: QueueRoom | undefined;
  /** Called when the queue has emptied (a store feeding the session feeds more). */
  onQueueDrained: (() => void) | undefined;

  constructor(clientId: string, maxQueued: number, drops: DropCounter, room?: QueueRoom) {
    this.clientId = clientId;
    this.#maxQueued = maxQueued;
    this.#drops = drops;
    this.#room = room;
  }

  /** By topic filter as the client sent it. */
  get subscriptions(): ReadonlyMap<string, Subscription> {
    return this.#subscriptions;
  }

  subscribe(filter: string, subscription: Subscription): void {
    if (this.#subscriptions === NONE) this.#subscriptions = new Map();
    this.#subscriptions.set(filter, subscription);
  }

  unsubscribe(filter: string): boolean {
    return this.#subscriptions.delete(filter);
  }

  clearSubscriptions(): void {
    this.#subscriptions.clear();
  }

  #setInflight(packetId: number, inflight: Inflight): void {
    if (this.#inflight === NONE) this.#inflight = new Map();
    this.#inflight.set(packetId, inflight);
  }

  /** QoS 2 packet ids received and not yet released by PUBREL [MQTT-4.3.3-9]. */
  get qos2Received(): Map<number, 'producing' | 'stored'> {
    // made when first used, as the other maps of a session: most sessions never see QoS 2
    this.#qos2Received ??= new Map();
    return this.#qos2Received;
  }

  /**
   * Retransmissions of a QoS 2 publish that arrived while it was still being
   * produced (possibly on a newer connection): each is answered when Kafka settles.
   */
  get qos2Waiting(): Map<number, Array<(outcome: UplinkOutcome) => void>> {
    this.#qos2Waiting ??= new Map();
    return this.#qos2Waiting;
  }

  get online(): boolean {
    return this.#link !== undefined || this.remote?.online === true;
  }

  deliver(delivery: Delivery): void {
    if (isExpired(delivery.message, Date.now())) {
      this.#drop(delivery, 'expired'); // [MQTT-3.3.2-5]
      return;
    }
    if (delivery.qos === 0) {
      // QoS 0 is not kept for a client that is not there
      if (!this.#link) this.#drop(delivery, 'offline-qos0');
      else if (this.#link.writeCongested) this.#drop(delivery, 'slow-subscriber');
      else {
        this.#write(delivery, undefined, false);
        delivery.settle?.();
      }
      return;
    }
    if (this.#canSend()) this.#send(delivery);
    else this.#enqueue(delivery);
  }

  /**
   * A connection takes the session: unacknowledged PUBLISH packets are sent
   * again with DUP and PUBREL packets again, in their original order
   * [MQTT-4.4.0-1] — no more than the new connection's Receive Maximum
   * [MQTT-3.3.4-7]; the rest follow as acknowledgements make room — then the
   * queue drains.
   */
  attach(link: SessionLink): void {
    this.#link = link;
    this.#unsent = this.#inflight.size;
    for (const inflight of this.#inflight.values()) inflight.sent = false;
    this.#drain();
  }

  /** The connection can take more writes: what waits for room is sent. */
  resumeDelivery(): void {
    this.#drain();
  }

  /**
   * Retained messages a new subscription matched [MQTT-3.3.1-9], at the subscription's QoS and
   * with its identifier: sent as fast as the client reads them (its socket and its Receive
   * Maximum), never dropped for a slow reader while it is connected; later QoS 1/2 messages wait
   * behind them. Each is checked when its turn comes: still retained, not expired, and allowed
   * by the client's read rights. Beyond `store.maxMessages` waiting they are dropped.
   */
  replayRetained(
    store: RetainedStore,
    messages: BrokerMessage[],
    subscription: Pick<Subscription, 'qos' | 'identifier'>,
  ): void {
    this.#retainedReplay ??= new RetainedReplay();
    const refused = this.#retainedReplay.add(store, messages, subscription);
    for (let i = 0; i < refused; i++) this.#drops.dropped('queue-full');
    // the client may have gone while the subscription was being kept
    if (this.#link) this.#drain();
    else this.#queueRetained();
  }

  detach(): void {
    this.#link = undefined;
    // offline, its queue is the only bound: nothing waits for the client to come back
    this.#room?.freed(this);
    this.#queueRetained();
  }

  /**
   * Messages waiting to be sent (offline, beyond the Receive Maximum, or behind retained
   * messages); retained messages waiting are not counted.
   */
  get queued(): number {
    return this.#queue.length;
  }

  /** QoS 1/2 messages sent (or to be sent again) and not yet acknowledged: for the admin API. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /**
   * A QoS 2 message whose PUBREC came before a restart: PUBREL goes (again) on the next
   * connection, and `settle` runs at PUBCOMP.
   */
  restoreReleased(packetId: number, settle: () => void): void {
    const delivery: Delivery = {
      message: RELEASED_PLACEHOLDER,
      qos: 2,
      retain: false,
      subscriptionIds: [],
      settle,
    };
    this.#setInflight(packetId, { delivery, awaiting: 'pubcomp', sent: false });
    this.#unsent++;
    this.#drain();
  }

  /**
   * The client acknowledged a packet id: PUBACK ends QoS 1; PUBREC moves QoS 2
   * on to PUBREL (unless its reason code is an error, which ends it); PUBCOMP
   * ends QoS 2. Returns false when nothing with that id waits for this packet.
   */
  acknowledge(kind: Inflight['awaiting'], packetId: number, reasonCode = 0): boolean {
    const inflight = this.#inflight.get(packetId);
    if (inflight?.awaiting !== kind) return false;
    if (kind === 'pubrec' && reasonCode < 0x80) {
      inflight.awaiting = 'pubcomp';
      const link = this.#link;
      const sendPubrel = (): void => {
        // a newer connection sends PUBREL itself (attach)
        if (this.#link === link && this.#inflight.get(packetId) === inflight) {
          link?.send({ cmd: 'pubrel', messageId: packetId });
        }
      };
      if (inflight.delivery.released) inflight.delivery.released(sendPubrel);
      else sendPubrel();
      return true;
    }
    this.#inflight.delete(packetId);
    if (!inflight.sent) this.#unsent--;
    inflight.delivery.settle?.();
    this.#drain();
    return true;
  }

  /** The session ends: nothing more is delivered; what was waiting is dropped. */
  clear(): void {
    this.#retainedReplay?.clear();
    const waiting = [...this.#inflight.values()].map(({ delivery }) => delivery);
    this.#inflight.clear();
    this.#unsent = 0;
    waiting.push(...this.#queue);
    this.#queue = NO_DELIVERIES;
    this.#room?.freed(this);
    for (const delivery of waiting) delivery.settle?.();
    this.#qos2Received = undefined;
    this.#qos2Waiting = undefined;
    this.clearSubscriptions();
  }

  /**
   * Drops the messages waiting for the client (queued, or sent and not acknowledged before
   * PUBREC) that `allowed` refuses: the client may no longer receive them. Returns how many.
   */
  withdraw(allowed: (delivery: Delivery) => boolean): number {
    let dropped = 0;
    for (const [packetId, { delivery, awaiting, sent }] of this.#inflight) {
      if (awaiting === 'pubcomp' || allowed(delivery)) continue;
      this.#inflight.delete(packetId);
      if (!sent) this.#unsent--;
      this.#drop(delivery, 'not-authorized');
      dropped++;
    }
    const kept: Delivery[] = [];
    for (const delivery of this.#queue) {
      if (allowed(delivery)) {
        kept.push(delivery);
      } else {
        this.#drop(delivery, 'not-authorized');
        dropped++;
      }
    }
    this.#queue = kept;
    this.#queueShrank();
    return dropped;
  }

  /**
   * Takes the messages that came through a shared subscription and that the
   * client has not received yet (queued, or unacknowledged before PUBREC):
   * when the session ends they go to another member of the group
   * [MQTT-4.8.2-4 (5.0)].
   */
  takeUndeliveredShared(): Delivery[] {
    const undelivered: Delivery[] = [];
    for (const [packetId, { delivery, awaiting, sent }] of this.#inflight) {
      if (!delivery.shared || awaiting === 'pubcomp') continue;
      undelivered.push(delivery);
      this.#inflight.delete(packetId);
      if (!sent) this.#unsent--;
    }
    undelivered.push(...this.#queue.filter((delivery) => delivery.shared));
    this.#queue = this.#queue.filter((delivery) => !delivery.shared);
    this.#queueShrank();
    return undelivered;
  }

  /** QoS 1/2 packets sent and not yet acknowledged, which Receive Maximum limits. */
  get #unacknowledged(): number {
    return this.#inflight.size - this.#unsent;
  }

  #canSend(): boolean {
    return (
      this.#link !== undefined &&
      !this.#link.writeCongested &&
      this.#unsent === 0 &&
      (this.#retainedReplay?.size ?? 0) === 0 &&
      this.#queue.length === 0 &&
      this.#unacknowledged < this.#link.receiveMaximum
    );
  }

  #enqueue(delivery: Delivery): void {
    if (this.#queue.length >= this.#maxQueued) {
      this.#drop(delivery, 'queue-full');
      return;
    }
    if (this.#queue === NO_DELIVERIES) this.#queue = [];
    this.#queue.push(delivery);
    if (this.#link && this.#queue.length >= this.#maxQueued) this.#room?.filled(this);
  }

  /** Half the queue is free again: the downlink no longer waits for this session. */
  #queueShrank(): void {
    if (this.#queue.length <= this.#maxQueued >> 1) this.#room?.freed(this);
  }

  #drain(): void {
    const link = this.#link;
    if (!link) return;
    if (this.#unsent > 0) {
      for (const [packetId, inflight] of this.#inflight) {
        if (this.#unacknowledged >= link.receiveMaximum || link.writeCongested) return;
        if (inflight.sent) continue;
        inflight.sent = true;
        this.#unsent--;
        if (inflight.awaiting === 'pubcomp') link.send({ cmd: 'pubrel', messageId: packetId });
        else this.#write(inflight.delivery, packetId, true);
      }
    }
    this.#sendRetained(link);
    if ((this.#retainedReplay?.size ?? 0) > 0) return;
    const hadQueue = this.#queue.length > 0;
    while (
      this.#queue.length > 0 &&
      this.#unacknowledged < link.receiveMaximum &&
      !link.writeCongested
    ) {
      const delivery = this.#queue.shift() as Delivery;
      if (isExpired(delivery.message, Date.now())) this.#drop(delivery, 'expired');
      else this.#send(delivery);
      this.#room?.took(this);
    }
    if (hadQueue) this.#queueShrank();
    if (hadQueue && this.#queue.length === 0) this.onQueueDrained?.();
  }

  /** Retained messages waiting, in order, while the client takes them. */
  #sendRetained(link: SessionLink): void {
    const replay = this.#retainedReplay;
    if (replay === undefined) return;
    while (!link.writeCongested) {
      const delivery = replay.peek(this);
      if (delivery === undefined) return;
      if (delivery.qos > 0 && this.#unacknowledged >= link.receiveMaximum) return;
      replay.take();
      if (delivery.qos === 0) this.#write(delivery, undefined, false);
      else this.#send(delivery);
    }
  }

  /**
   * The client is gone: its retained messages not sent yet are treated as any message for an
   * absent client — QoS 0 is not kept, QoS 1/2 waits in the queue (ahead of what was queued
   * behind it) while there is room.
   */
  #queueRetained(): void {
    const replay = this.#retainedReplay;
    if (replay === undefined) return;
    const kept: Delivery[] = [];
    for (let delivery = replay.peek(this); delivery !== undefined; delivery = replay.peek(this)) {
      replay.take();
      if (delivery.qos === 0) this.#drops.dropped('offline-qos0');
      else if (this.#queue.length + kept.length >= this.#maxQueued)
        this.#drops.dropped('queue-full');
      else kept.push(delivery);
    }
    if (kept.length > 0) this.#queue = kept.concat(this.#queue);
  }

  /**
   * Whether a retained message whose turn has come still goes: the client may read its topic
   * (read rights change), and it has not expired while it waited.
   */
  wantsRetained(message: BrokerMessage): boolean {
    if (!this.permissions.canReceive(message.topic)) return false;
    if (!isExpired(message, Date.now())) return true;
    this.#drops.dropped('expired'); // [MQTT-3.3.2-5]
    return false;
  }

  #send(delivery: Delivery): void {
    const wanted = delivery.packetId;
    const packetId =
      wanted !== undefined && !this.#inflight.has(wanted) ? wanted : this.#allocatePacketId();
    this.#setInflight(packetId, {
      delivery,
      awaiting: delivery.qos === 1 ? 'puback' : 'pubrec',
      sent: true,
    });
    // [MQTT-3.1.2-25] a message too large for the client is dropped as if delivered
    if (!this.#write(delivery, packetId, delivery.dup === true)) {
      this.#inflight.delete(packetId);
      delivery.settle?.();
    }
  }

  #drop(delivery: Delivery, reason: DropReason): void {
    this.#drops.dropped(reason);
    delivery.settle?.();
  }

  /** [MQTT-2.2.1-3] a packet id not in use by another in-flight message. */
  #allocatePacketId(): number {
    for (;;) {
      const id = this.#nextPacketId;
      this.#nextPacketId = id === 0xffff ? 1 : id + 1;
      if (!this.#inflight.has(id)) return id;
    }
  }

  #write(delivery: Delivery, packetId: number | undefined, dup: boolean): boolean {
    const link = this.#link;
    if (!link) return true;
    const { message } = delivery;
    const packet: IPublishPacket = {
      cmd: 'publish',
      topic: message.topic,
      payload: message.payload,
      qos: delivery.qos,
      retain: delivery.retain,
      dup,
      ...(packetId !== undefined ? { messageId: packetId } : {}),
    };
    if (link.protocolVersion === 5) {
      const ttl = secondsToLive(message, Date.now());
      const ids = delivery.subscriptionIds;
      packet.properties = {
        ...message.properties,
        // [MQTT-3.3.2-6] the interval sent is what is left of it
        ...(ttl !== undefined ? { messageExpiryInterval: ttl } : {}),
        // [MQTT-3.3.4-3] every matching subscription's identifier
        ...(ids.length > 0 ? { subscriptionIdentifier: ids.length === 1 ? ids[0] : ids } : {}),
      };
    }
    const sent = link.sendPublish(packet);
    if (!sent) this.#drops.dropped('too-large');
    return sent;
  }
}

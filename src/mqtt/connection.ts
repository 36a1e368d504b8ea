import type { Duplex } from 'node:stream';
import mqttPacket, { type IConnectPacket, type IPublishPacket, type Packet } from 'mqtt-packet';
import type { AnonymousAccess } from '../auth/anonymous-access.js';
import { AuthThrottle, addressKey } from '../auth/auth-throttle.js';
import type { Authenticator } from '../auth/authenticator.js';
import { unproved, type Identity } from '../auth/identity.js';
import { LongTimer } from './long-timer.js';
import { ALLOW_ALL, type Permissions } from '../auth/permissions.js';
import type { Logger } from '../observability/logger.js';
import { FrameScanner, type FrameProblem } from './frame-scanner.js';
import {
  isPlainPublish,
  plainPublishSize,
  writePlainPublish,
  type PlainPublish,
} from './publish-encoder.js';
import { decodePlainPublish, frameEnd, frameSize } from './publish-fast-path.js';
import { OrderedAcks } from './ordered-acks.js';
import { PublishRate } from './publish-rate.js';
import { ReasonCode } from './reason-codes.js';
import { parseWholePackets } from './whole-packet-parser.js';
import { dispatch } from './handlers/dispatch.js';
import type { Broker } from './broker.js';
import type { AuthExchange } from './handlers/auth.js';
import type { Session, SessionLink } from './session.js';
import type { AdmissionLimit } from './connection-admission.js';

/** The life of a connection, one field with explicit transitions. */
export type ConnectionStatus =
  /** Socket open, waiting for CONNECT. */
  | 'awaiting-connect'
  /** CONNECT received; its credentials are being checked (password or an AUTH exchange). */
  | 'authenticating'
  /** CONNACK sent; packets flow. */
  | 'connected'
  /** We decided to close; remaining writes are flushed, nothing more is read. */
  | 'closing'
  /** Socket gone. */
  | 'closed';

export type ProtocolVersion = 3 | 4 | 5;

export interface ConnectionOptions {
  maxPacketSize: number;
  /** Time from the socket's opening to CONNACK: CONNECT and the whole authentication. */
  connectTimeoutMs: number;
  topicAliasMaximum: number;
  /**
   * Unacknowledged QoS 1/2 publishes a client may send: advertised to MQTT 5
   * clients; at this many the socket stops being read.
   */
  receiveMaximum: number;
  /**
   * QoS 1/2 messages sent to a client and not yet acknowledged, at most (`mqtt.maxInflight`):
   * the smaller of it and the client's Receive Maximum; the rest wait in its session.
   */
  maxInflight: number;
  /** Topic filters one session may hold (`mqtt.maxSubscriptionsPerClient`). */
  maxSubscriptionsPerClient: number;
  /** Most levels of a topic name or filter (`mqtt.maxTopicLevels`). */
  maxTopicLevels: number;
  /** Longest topic name or filter in bytes (`mqtt.maxTopicLength`). */
  maxTopicLength: number;
  /** PUBLISH packets per second per connection (`mqtt.maxPublishRate`); 0: no limit. */
  maxPublishRate: number;
  /** Longest keep alive in seconds (0: no limit), imposed on MQTT 5 clients via Server Keep Alive. */
  maxKeepAlive: number;
  /** Longest Session Expiry Interval in seconds granted to a client; 0: no limit. */
  maxSessionExpiry: number;
  /** Bytes written to a client and not yet taken by it beyond which QoS 0 is dropped and QoS 1/2 waits. */
  maxWriteBuffer: number;
  /** Prefix of the Response Information given to MQTT 5 clients that request it; '' for none. */
  responseTopicPrefix: string;
  /** Where MQTT 5 clients are sent: at shutdown, and at CONNECT when `redirect` is set. */
  serverReference: string;
  /** Refuse every CONNECT, pointing MQTT 5 clients to `serverReference` (0x9C or 0x9D). */
  redirect: 'none' | 'use-another-server' | 'server-moved';
  /** Users and ACLs. */
  authenticator: Authenticator;
  /** Without a users file: who may connect (loopback clients only unless auth.allowAnonymous). */
  anonymousAccess: AnonymousAccess;
  /**
   * Failed authentications slowed per remote address. Default: one throttle per options
   * object (that is, per broker) with the default settings.
   */
  authThrottle?: AuthThrottle;
}

/** The throttle of connections sharing `options` when none is configured. */
const defaultThrottles = new WeakMap<ConnectionOptions, AuthThrottle>();

function throttleOf(options: ConnectionOptions): AuthThrottle {
  if (options.authThrottle) return options.authThrottle;
  let throttle = defaultThrottles.get(options);
  if (throttle === undefined) {
    throttle = new AuthThrottle();
    defaultThrottles.set(options, throttle);
  }
  return throttle;
}

type Will = NonNullable<IConnectPacket['will']>;

/**
 * Time a refused connection has to send its CONNECT (at most; mqtt.connectTimeoutMs when
 * shorter): enough for a client to read its refusal, short enough that a flood of refused
 * sockets does not pile up.
 */
const REFUSED_CONNECT_TIMEOUT_MS = 2_000;

/** Why the frame scanner refused a stream (packet-too-large is told with the limit). */
const PROBLEM_TEXT: Record<Exclude<FrameProblem, 'packet-too-large'>, string> = {
  'malformed-remaining-length': 'malformed remaining length',
  'malformed-packet-type': 'malformed packet: reserved packet type 0',
  'malformed-header-flags': 'malformed packet: invalid fixed header flags',
};

const UNACCEPTABLE_PROTOCOL_VERSION = Buffer.from([0x20, 0x02, 0x00, 0x01]);

/**
 * Times a connection keeps count in milliseconds from here (when this module was loaded): small
 * integers for weeks, where times since the epoch would each take a heap number of their own.
 */
const CLOCK_ORIGIN = Date.now();

/**
 * Milliseconds since `time` (Date.now() time) from CLOCK_ORIGIN. Math.trunc changes no value: it
 * gives V8's small integer where a difference of two large numbers is a heap number, and a field
 * that once held a heap number holds every later value in one.
 */
function sinceOrigin(time: number): number {
  return Math.trunc(time - CLOCK_ORIGIN);
}

/** Milliseconds since CLOCK_ORIGIN. */
function clock(): number {
  return sinceOrigin(Date.now());
}

/**
 * The largest packet MQTT can encode (a Remaining Length of 268,435,455 after five bytes of fixed
 * header): a client that states no Maximum Packet Size takes any.
 */
export const LARGEST_PACKET = 268_435_460;

/*
 * A connection's yes-or-no state, as bits of one number (Connection.#flags): a boolean field
 * each took 8 bytes of every connection.
 */
/** Not read: as many QoS 1/2 publishes unacknowledged as the Receive Maximum allows. */
const READ_PAUSED = 0x1;
/** Not read any more (see stopReading). */
const READ_STOPPED = 0x2;
/** Writes of this tick are being gathered into one (socket corked until next tick). */
const CORKED = 0x4;
/** A write that congests the socket was given a callback resuming delivery once it left. */
const AWAITING_FLUSH = 0x8;
/** Not read while the uplink is congested. */
const CONGESTION_PAUSED = 0x10;
/** Not read while the publish rate is beyond the limit (MQTT 3.1/3.1.1). */
const RATE_PAUSED = 0x20;
/** Any of the reasons the socket is not read. */
const NOT_READING = READ_PAUSED | READ_STOPPED | CONGESTION_PAUSED | RATE_PAUSED;
/** The will goes out when the connection ends (not after a DISCONNECT without it). */
const SEND_WILL = 0x40;
/** CONNECT was accepted. */
const ACCEPTED = 0x80;
/** The broker was told that the connection is over. */
const RELEASED = 0x100;
/** The socket's slot in the connection counts is free again. */
const SLOT_RELEASED = 0x200;
/** The Clean Start of the CONNECT accepted. */
const CLEAN_START = 0x400;
/** The client wants reason strings on acknowledgements (MQTT 5 Request Problem Information). */
const PROBLEM_INFORMATION = 0x800;

/** Bytes gathered from writes of one tick beyond which they leave at once (a socket's high-water mark). */
const CORK_BYTES = 16 * 1024;

/** Packets a connection holds while the uplink is congested before it stops reading. */
const MAX_HELD_FOR_UPLINK = 64;

/** First byte of each acknowledgement that can be written as four fixed bytes. */
const ACK_TYPES = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 } as const;
export type AckType = keyof typeof ACK_TYPES;

/** Bytes of acknowledgements gathered at most before they leave as one write. */
const ACK_CHUNK = 1024;

/**
 * The chunk small publishes of a tick are gathered in: below half of Node's buffer pool
 * (4 KiB), so that it is a slice of the pool, not a memory allocation of its own.
 */
const PUBLISH_CHUNK = 4095;

/** The largest PUBLISH gathered with the other writes of its tick; larger ones are written alone. */
const GATHERED_PUBLISH = 1024;

/**
 * What waits in `Connection.acks`: an acknowledgement of success as a number (see `ackCode`), or
 * a function that answers otherwise.
 */
export type AckReply = number | (() => void);

/** An acknowledgement of success (no reason code, no properties) in `Connection.acks`. */
export function ackCode(type: AckType, messageId: number): number {
  return ACK_TYPES[type] * 65_536 + messageId;
}

/** Where a socket's shared listeners find their connection. */
const OWNER = Symbol('connection');
type OwnedSocket = Duplex & { [OWNER]: Connection };

/**
 * One client: bytes in → packets → handlers; packets out → bytes. Owns the
 * keep-alive timer and the per-connection protocol state. Knows nothing of
 * Kafka: publishes go to the broker.
 */

export class Connection implements SessionLink {
  readonly broker: Broker;
  readonly options: ConnectionOptions;
  readonly remoteAddress: string;
  /** The user name the client's verified certificate gives (`tls.identity`), if any. */
  readonly certificateName: string | undefined;
  /** The connection limit that refused this connection when its socket was accepted, if any. */
  readonly refusedBy: AdmissionLimit | undefined;
  /** Replies to QoS 1/2 publishes, run in arrival order [MQTT-4.6.0-2]. */
  #acks: OrderedAcks<AckReply> | undefined;
  clientId = '';
  /** The user name CONNECT sent; once accepted, the identity's. */
  username: string | undefined;
  #origin: { readonly clientId: string; readonly username: string | undefined } | undefined;
  /** Who the client proved to be; set when CONNECT is accepted. */
  identity: Identity = unproved(undefined);
  protocolVersion: ProtocolVersion = 4;
  /** When the broker accepted CONNECT (ms since CLOCK_ORIGIN); see connectedAt. */
  #connectedSince = 0;
  /** Bits of yes-or-no state (READ_PAUSED and the others). */
  #flags = SEND_WILL | CLEAN_START | PROBLEM_INFORMATION;
  will: Will | undefined;
  /** The client's Receive Maximum [MQTT-3.3.4-7]. */
  receiveMaximum = 65_535;
  /** The largest packet the client accepts [MQTT-3.1.2-24]. */
  maximumPacketSize = LARGEST_PACKET;
  /** Server → client topic aliases the client accepts. */
  topicAliasMaximum = 0;
  /** What the client may publish and subscribe to; set when CONNECT is accepted. */
  permissions: Permissions = ALLOW_ALL;
  /** MQTT 5 Authentication Method of CONNECT (enhanced authentication), if any. */
  authMethod: string | undefined;
  /** An AUTH exchange in progress (at CONNECT or re-authentication). */
  authExchange: AuthExchange | undefined;
  /** Client → server topic aliases (MQTT 5); made when first used, as the server → client ones. */
  #inboundAliases: Map<number, string> | undefined;
  #outboundAliases: Map<string, number> | undefined;

  #status: ConnectionStatus = 'awaiting-connect';
  #log: Logger | undefined;
  /** The protocol version of the CONNECT parsed (known before CONNECT is handled). */
  #wireVersion: ProtocolVersion = 4;
  readonly #socket: Duplex;
  /** The frame scanner's state while a chunk has ended inside a packet (see FrameScanner.of). */
  #scanner: FrameScanner | undefined;
  #keepAliveMs = 0;
  /** When a packet last arrived (ms since CLOCK_ORIGIN), or reading resumed. */
  #lastReceivedAt = clock();
  #timer: NodeJS.Timeout | undefined;
  /** Ends the connection when its identity's token expires. */
  #identityExpiry: LongTimer | undefined;
  /**
   * Packets of this tick not written yet (acknowledgements, small publishes):
   * `#outChunk[#outStart, #outEnd)`. Bytes before `#outStart` were handed to the socket and are
   * never written over: a full chunk is replaced, not reused.
   */
  #outChunk: Buffer | undefined;
  #outStart = 0;
  #outEnd = 0;
  /** Packets that arrived while a password was being checked; handled once CONNECT is accepted. */
  #held: Packet[] | undefined;
  /** Packets held while the uplink is congested (and all that follow them), in order. */
  #heldForUplink: Packet[] | undefined;
  /**
   * The start of a packet whose end has not arrived yet, while this connection frames packets
   * itself (see #frame); undefined when none.
   */
  #carry: Buffer[] | undefined;
  /** `mqtt.maxPublishRate`; undefined without a limit. */
  readonly #publishRate: PublishRate | undefined;
  /** The keep-alive wheel's bookkeeping (see KeepAliveWheel). */
  keepAliveSlot = -1;
  #session: Session | undefined;

  constructor(
    socket: Duplex,
    remoteAddress: string,
    broker: Broker,
    options: ConnectionOptions,
    refusedBy: AdmissionLimit | undefined,
    certificateName?: string,
  ) {
    this.#socket = socket;
    this.certificateName = certificateName;
    this.refusedBy = refusedBy;
    this.remoteAddress = remoteAddress;
    this.broker = broker;
    this.options = options;
    this.#publishRate =
      options.maxPublishRate > 0 ? new PublishRate(options.maxPublishRate) : undefined;

    // the socket's listeners are shared by all connections (no closures per connection)
    (socket as OwnedSocket)[OWNER] = this;
    socket.on('data', Connection.#socketData);
    socket.on('drain', Connection.#socketDrain);
    socket.on('error', Connection.#socketError);
    socket.on('close', Connection.#socketClose);
    // The whole way to CONNACK, an AUTH exchange or a password check included, must fit in the
    // CONNECT timeout: a client silent in the middle of an exchange is closed too.
    const connectTimeoutMs =
      this.refusedBy === undefined
        ? options.connectTimeoutMs
        : Math.min(options.connectTimeoutMs, REFUSED_CONNECT_TIMEOUT_MS);
    this.#timer = setTimeout(() => {
      if (this.#status === 'awaiting-connect') this.close('no CONNECT in time');
      else if (this.#status === 'authenticating') this.close('authentication not finished in time');
    }, connectTimeoutMs);
  }

  static #socketData(this: Duplex, chunk: Buffer): void {
    (this as OwnedSocket)[OWNER].#onData(chunk);
  }

  static #socketDrain(this: Duplex): void {
    (this as OwnedSocket)[OWNER].#session?.resumeDelivery();
  }

  static #socketError(this: Duplex, error: Error): void {
    (this as OwnedSocket)[OWNER].log.debug({ err: error }, 'socket error');
  }

  static #socketClose(this: Duplex): void {
    (this as OwnedSocket)[OWNER].#onClose();
  }

  /** The acknowledgements of the client's publishes, in order (made at the first). */
  get acks(): OrderedAcks<AckReply> {
    this.#acks ??= new OrderedAcks<AckReply>(this);
    return this.#acks;
  }

  /** An acknowledgement whose turn has come (see OrderedAcks): a packet code, or a packet to send. */
  writeAck(reply: AckReply): void {
    if (typeof reply === 'number') this.#sendAckCode(reply);
    else reply();
    this.#resumeIfDrained();
  }

  /**
   * The keep-alive deadline has come (see KeepAliveWheel): nothing received within one and a
   * half keep-alive periods closes the connection [MQTT-3.1.2-24]; else the next deadline counts
   * from the last packet received.
   */
  keepAliveDue(now: number): void {
    if (this.#status === 'closed' || this.#status === 'closing') return;
    const limit = this.#keepAliveMs * 1.5;
    // While the bridge itself does not read, the client's silence is not its fault.
    if (this.#is(NOT_READING)) {
      this.#lastReceivedAt = sinceOrigin(now);
    }
    const lastReceivedAt = CLOCK_ORIGIN + this.#lastReceivedAt;
    if (now - lastReceivedAt >= limit) {
      this.protocolViolation(ReasonCode.KeepAliveTimeout, 'keep alive timeout');
    } else {
      this.broker.keepAlive.add(this, lastReceivedAt + limit);
    }
  }

  /** When the broker accepted CONNECT (ms since the epoch): for the admin API. */
  get connectedAt(): number {
    return CLOCK_ORIGIN + this.#connectedSince;
  }

  set connectedAt(time: number) {
    this.#connectedSince = sinceOrigin(time);
  }

  /** The Clean Start of the CONNECT accepted: for the admin API. */
  get cleanStart(): boolean {
    return this.#is(CLEAN_START);
  }

  set cleanStart(value: boolean) {
    this.#set(CLEAN_START, value);
  }

  /** Whether the client wants reason strings on acknowledgements (MQTT 5 Request Problem Information). */
  get problemInformation(): boolean {
    return this.#is(PROBLEM_INFORMATION);
  }

  set problemInformation(value: boolean) {
    this.#set(PROBLEM_INFORMATION, value);
  }

  /** Whether any of the bits of `flags` is set. */
  #is(flags: number): boolean {
    return (this.#flags & flags) !== 0;
  }

  #set(flag: number, value: boolean): void {
    this.#flags = value ? this.#flags | flag : this.#flags & ~flag;
  }

  /** The connection's logger, made when first used: most connections never log a line. */
  get log(): Logger {
    this.#log ??= this.broker.log.child({ remote: this.remoteAddress });
    return this.#log;
  }

  /** Client → server topic aliases (MQTT 5). */
  get topicAliases(): Map<number, string> {
    this.#inboundAliases ??= new Map();
    return this.#inboundAliases;
  }

  get status(): ConnectionStatus {
    return this.#status;
  }

  /** The origin of this client's messages (client id, user name): one object while they last. */
  get origin(): { readonly clientId: string; readonly username: string | undefined } {
    const origin = this.#origin;
    if (origin?.clientId === this.clientId && origin.username === this.username) return origin;
    this.#origin = Object.freeze({ clientId: this.clientId, username: this.username });
    return this.#origin;
  }

  /** A packet from the client, decoded by mqtt-packet or by the PUBLISH fast path. */
  #onPacket(packet: Packet): void {
    const { traffic } = this.broker;
    traffic.packetsReceived++;
    if (packet.cmd === 'publish') traffic.publishesReceived++;
    else if (packet.cmd === 'connect') traffic.connectsReceived++;
    if (this.#over()) return;
    if (packet.cmd === 'publish' && this.#publishRate !== undefined && !this.#withinRate()) {
      return;
    }
    if (this.#held) {
      this.#held.push(packet);
      return;
    }
    if (
      (this.#heldForUplink?.length ?? 0) > 0 ||
      (packet.cmd === 'publish' && this.broker.uplinkCongested)
    ) {
      this.#holdForUplink(packet);
      return;
    }
    this.#handle(packet);
  }

  get writeCongested(): boolean {
    const gathered = this.#outEnd - this.#outStart;
    return this.#socket.writableLength + gathered >= this.options.maxWriteBuffer;
  }

  #handle(packet: Packet): void {
    try {
      dispatch(this, packet);
    } catch (error) {
      // A bug must cost this client its connection, never the process.
      this.log.error(
        { err: error, cmd: packet.cmd, clientId: this.clientId },
        'packet handling failed',
      );
      this.protocolViolation(ReasonCode.ImplementationSpecificError, 'internal error');
    }
  }

  /**
   * CONNECT is being authenticated. A password check holds the packets that
   * follow CONNECT (a client need not wait for CONNACK) and stops reading; an
   * AUTH exchange keeps reading, since the client answers with AUTH packets.
   */
  startAuthenticating({ hold }: { hold: boolean }): void {
    this.#status = 'authenticating';
    if (hold && this.#held === undefined) {
      this.#held = [];
      this.#socket.pause();
    }
  }

  /**
   * Runs a check of CONNECT's credentials (a password, or the proof ending a SCRAM exchange)
   * under the per-address throttle: a throttled address waits its turn first, whatever the
   * outcome, then the outcome is recorded. Undefined when the connection ended while waiting
   * (nothing was checked). A refusal other than `not-authorized` counts as a failure.
   */
  async checkCredentials<R extends { ok: boolean; reason?: string }>(
    check: () => R | Promise<R>,
  ): Promise<R | undefined> {
    const throttle = throttleOf(this.options);
    const address = addressKey(this.remoteAddress);
    const wait = throttle.delay(address);
    if (wait > 0) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (this.#status !== 'authenticating') return undefined;
    }
    const result = await check();
    if (result.ok) throttle.succeeded(address);
    else if (result.reason !== 'not-authorized') this.authenticationFailed();
    return result;
  }

  /**
   * Credentials were wrong (also at re-authentication): counted for the remote address, and
   * logged with it at most once a minute.
   */
  authenticationFailed(): void {
    const report = throttleOf(this.options).failed(addressKey(this.remoteAddress));
    if (report === undefined) return;
    this.broker.log.warn(
      {
        address: report.address,
        failures: report.failures,
        inARow: report.inARow,
        delayMs: report.delayMs,
      },
      'failed authentications from this address (logged at most once a minute per address)',
    );
  }

  /** The client's session; handlers only run once CONNECT gave it one. */
  get session(): Session {
    if (!this.#session) throw new Error('no session before CONNECT is accepted');
    return this.#session;
  }

  set session(session: Session) {
    this.#session = session;
  }

  /** The Keep Alive in force (the server's, when it set one), in seconds; 0: none. */
  get keepAlive(): number {
    return this.#keepAliveMs / 1000;
  }

  /** CONNECT accepted: keep alive starts, the broker knows the client. */
  markConnected(keepAliveSeconds: number): void {
    this.#status = 'connected';
    this.#set(ACCEPTED, true);
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#keepAliveMs = keepAliveSeconds * 1000;
    if (this.#keepAliveMs > 0)
      this.broker.keepAlive.add(this, Date.now() + this.#keepAliveMs * 1.5);
    const { expiresAt } = this.identity;
    if (expiresAt !== undefined) {
      // the token proved who the client is until then (MQTT 5: DISCONNECT 0x87)
      this.#identityExpiry = new LongTimer(expiresAt - Date.now(), () => {
        this.log.info({ clientId: this.clientId, username: this.username }, 'token expired');
        this.close('token expired', ReasonCode.NotAuthorized);
      });
    }
  }

  /**
   * The uplink is congested: a PUBLISH waits, and so does everything after it
   * (acknowledgements must keep their order), except PINGREQ, answered at once
   * so that the client keeps the connection. QoS 0 is dropped and counted
   * instead (at most once allows it). Beyond a few packets the socket is no
   * longer read: TCP slows the client down.
   */
  #holdForUplink(packet: Packet): void {
    if (packet.cmd === 'pingreq') {
      this.#handle(packet);
      return;
    }
    if (packet.cmd === 'publish' && packet.qos === 0) {
      this.broker.metrics.mqttMessagesDropped.inc({ reason: 'uplink-congested' });
      return;
    }
    this.#heldForUplink ??= [];
    this.#heldForUplink.push(packet);
    if (this.#heldForUplink.length >= MAX_HELD_FOR_UPLINK && !this.#is(CONGESTION_PAUSED)) {
      this.#set(CONGESTION_PAUSED, true);
      this.#socket.pause();
    }
  }

  /** The uplink takes publishes again: held packets are handled in order, then reading resumes. */
  releaseHeldPublishes(): void {
    const held = this.#heldForUplink;
    while (held !== undefined && held.length > 0 && this.#status === 'connected') {
      const next = held[0] as Packet;
      if (next.cmd === 'publish' && this.broker.uplinkCongested) return;
      held.shift();
      this.#handle(next);
    }
    if (this.#is(CONGESTION_PAUSED)) {
      this.#set(CONGESTION_PAUSED, false);
      this.#lastReceivedAt = clock();
      this.#resumeReading();
    }
  }

  /** After CONNACK: the packets held during a password check are handled, and reading goes on. */
  releaseHeld(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    for (const packet of held) {
      if (this.#status !== 'connected') return;
      this.#handle(packet);
    }
    this.#resumeReading();
  }

  /** Writes one packet; silently dropped once the socket is gone. */
  send(packet: Packet): void {
    if (this.#status === 'closed' || this.#socket.writableEnded) return;
    if (packet.cmd in ACK_TYPES && this.#isPlainAck(packet)) {
      this.sendAck(packet.cmd as AckType, (packet as { messageId: number }).messageId);
      return;
    }
    if (packet.cmd === 'connack' && this.protocolVersion !== 5) {
      // MQTT 3.1 / 3.1.1: four fixed bytes, as mqtt-packet writes them, without its encoder
      this.broker.traffic.packetsSent++;
      this.#write(Buffer.from([0x20, 2, packet.sessionPresent ? 1 : 0, packet.returnCode ?? 0]));
      return;
    }
    let bytes = this.#encode(packet);
    if (bytes && bytes.length > this.maximumPacketSize && 'properties' in packet) {
      // [MQTT-3.1.2-24] too large for the client: reason string and user properties go first
      bytes = this.#encode({ ...packet, properties: undefined });
    }
    if (bytes && bytes.length <= this.maximumPacketSize) {
      this.broker.traffic.packetsSent++;
      this.#write(bytes);
    }
  }

  /**
   * An acknowledgement of success without reason code or properties: four fixed bytes, with no
   * packet object and no encoder. MQTT 5 omits reason code 0 and the property length when there
   * are no properties [MQTT-3.4.2-1]. Those of one tick are gathered into one write.
   */
  sendAck(type: AckType, messageId: number): void {
    if (this.#status === 'closed' || this.#socket.writableEnded) return;
    if (this.maximumPacketSize < 4) return;
    const chunk = this.#reserve(4, ACK_CHUNK);
    const at = this.#outEnd;
    chunk[at] = ACK_TYPES[type];
    chunk[at + 1] = 2;
    chunk[at + 2] = messageId >>> 8;
    chunk[at + 3] = messageId & 0xff;
    this.#outEnd = at + 4;
    this.broker.traffic.packetsSent++;
  }

  /**
   * The chunk to write the next `bytes` bytes of this tick at `#outEnd`: the current one while
   * they fit, else (the gathered bytes written) a new one of `size` bytes.
   */
  #reserve(bytes: number, size: number): Buffer {
    this.#cork();
    const chunk = this.#outChunk;
    if (chunk !== undefined && chunk.length - this.#outEnd >= bytes) return chunk;
    this.#flushGathered();
    const fresh = Buffer.allocUnsafe(size);
    this.#outChunk = fresh;
    this.#outStart = 0;
    this.#outEnd = 0;
    return fresh;
  }

  #sendAckCode(code: number): void {
    const messageId = code % 65_536;
    const type = (code - messageId) / 65_536;
    if (type === ACK_TYPES.puback) this.sendAck('puback', messageId);
    else if (type === ACK_TYPES.pubrec) this.sendAck('pubrec', messageId);
    else if (type === ACK_TYPES.pubrel) this.sendAck('pubrel', messageId);
    else this.sendAck('pubcomp', messageId);
  }

  /** An acknowledgement mqtt-packet would encode as four bytes, or MQTT 5's success, alike. */
  #isPlainAck(packet: Packet): boolean {
    const ack = packet as {
      messageId?: number;
      dup?: boolean;
      reasonCode?: number;
      properties?: object;
    };
    if (typeof ack.messageId !== 'number' || ack.dup === true) return false;
    if (this.protocolVersion !== 5) return true;
    return (ack.reasonCode ?? 0) === 0 && ack.properties === undefined;
  }

  /** The packets gathered leave now (before any other packet: order is kept). */
  #flushGathered(): void {
    const chunk = this.#outChunk;
    if (chunk === undefined || this.#outEnd === this.#outStart) return;
    const bytes = chunk.subarray(this.#outStart, this.#outEnd);
    this.#outStart = this.#outEnd;
    if (this.#status === 'closed' || this.#socket.writableEnded) return;
    this.#writeNow(bytes);
  }

  /** Writes of this tick are gathered until the next tick (or CORK_BYTES). */
  #cork(): void {
    if (this.#is(CORKED)) return;
    this.#set(CORKED, true);
    this.#socket.cork();
    process.nextTick(() => {
      this.#uncork();
    });
  }

  /**
   * Writes of one tick leave together: the acknowledgements a Kafka batch settles, or a burst
   * of deliveries, cost one system call. Beyond CORK_BYTES gathered they go at once, so that
   * `writeCongested` sees only bytes the client has not taken.
   */
  #write(bytes: Buffer): void {
    this.#flushGathered();
    this.#writeNow(bytes);
  }

  #writeNow(bytes: Buffer): void {
    this.broker.traffic.bytesSent += bytes.length;
    this.#cork();
    const congests = this.#socket.writableLength + bytes.length >= this.options.maxWriteBuffer;
    if (congests && !this.#is(AWAITING_FLUSH)) {
      // The socket's 'drain' comes only beyond its own high-water mark (16 KiB); with a smaller
      // mqtt.maxWriteBuffer, what waits for room (queue, retained replay) would wait for good.
      // Once this write has left, the client has taken bytes: delivery resumes.
      this.#set(AWAITING_FLUSH, true);
      this.#socket.write(bytes, () => {
        this.#set(AWAITING_FLUSH, false);
        this.#session?.resumeDelivery();
      });
    } else {
      this.#socket.write(bytes);
    }
    // below the write buffer limit, else a burst of one tick would look like a slow client
    if (this.#socket.writableLength >= Math.min(CORK_BYTES, this.options.maxWriteBuffer / 2)) {
      this.#uncork();
    }
  }

  #uncork(): void {
    this.#flushGathered();
    // a chunk publishes were gathered in is not kept past its tick: idle connections hold none
    if ((this.#outChunk?.length ?? 0) > ACK_CHUNK) this.#outChunk = undefined;
    if (!this.#is(CORKED)) return;
    this.#set(CORKED, false);
    this.#socket.uncork();
  }

  /** Encodes a packet; undefined (logged) when mqtt-packet cannot. */
  #encode(packet: Packet): Buffer | undefined {
    try {
      return mqttPacket.generate(packet, { protocolVersion: this.protocolVersion });
    } catch (error) {
      this.log.error(
        { err: error, cmd: packet.cmd, clientId: this.clientId },
        'cannot encode packet',
      );
      return undefined;
    }
  }

  /**
   * Writes a PUBLISH to the client, using a topic alias when the client allows
   * them; a packet larger than the client's Maximum Packet Size is not sent
   * [MQTT-3.1.2-25] and false is returned.
   */
  sendPublish(packet: IPublishPacket): boolean {
    if (this.#status === 'closed' || this.#socket.writableEnded) return true;
    if (this.topicAliasMaximum === 0 && isPlainPublish(packet)) return this.#sendPlain(packet);
    const { outgoing, newAlias } = this.#withTopicAlias(packet);
    const bytes = this.#encode(outgoing);
    if (!bytes || bytes.length > this.maximumPacketSize) return false;
    // the alias exists for the client only once a packet carrying it was sent
    if (newAlias !== undefined) (this.#outboundAliases ??= new Map()).set(packet.topic, newAlias);
    const { traffic } = this.broker;
    traffic.packetsSent++;
    traffic.publishesSent++;
    this.#write(bytes);
    return true;
  }

  /** A PUBLISH without properties, encoded by hand into this tick's gathered writes when small. */
  #sendPlain(packet: PlainPublish): boolean {
    const v5 = this.protocolVersion === 5;
    const size = plainPublishSize(packet, v5);
    if (size.total > this.maximumPacketSize) return false;
    const { traffic } = this.broker;
    traffic.packetsSent++;
    traffic.publishesSent++;
    if (size.total > GATHERED_PUBLISH) {
      const bytes = Buffer.allocUnsafe(size.total);
      writePlainPublish(bytes, 0, packet, size, v5);
      this.#write(bytes);
      return true;
    }
    // no more than half the write buffer gathered: writeCongested sees the rest
    const chunkSize = Math.max(
      size.total,
      Math.min(PUBLISH_CHUNK, this.options.maxWriteBuffer >> 1),
    );
    const chunk = this.#reserve(size.total, chunkSize);
    this.#outEnd = writePlainPublish(chunk, this.#outEnd, packet, size, v5);
    return true;
  }

  #withTopicAlias(packet: IPublishPacket): { outgoing: IPublishPacket; newAlias?: number } {
    if (this.topicAliasMaximum === 0) return { outgoing: packet };
    const known = this.#outboundAliases?.get(packet.topic);
    if (known !== undefined) {
      const properties = { ...packet.properties, topicAlias: known };
      return { outgoing: { ...packet, topic: '', properties } };
    }
    const used = this.#outboundAliases?.size ?? 0;
    if (used >= this.topicAliasMaximum) return { outgoing: packet };
    const newAlias = used + 1;
    const properties = { ...packet.properties, topicAlias: newAlias };
    return { outgoing: { ...packet, properties }, newAlias };
  }

  /** A requested Session Expiry Interval, capped by the configured maximum. */
  limitSessionExpiry(requested: number): number {
    const max = this.options.maxSessionExpiry;
    return max > 0 ? Math.min(requested, max) : requested;
  }

  /** Hands over the will so that closing this connection no longer sends it. */
  takeWill(): Will | undefined {
    const will = this.will;
    this.will = undefined;
    return will;
  }

  /** Normal DISCONNECT from the client: no will [MQTT-3.1.2-10] unless 0x04 asks for it. */
  clientDisconnected(sendWill: boolean): void {
    this.#set(SEND_WILL, sendWill);
    if (!sendWill) this.will = undefined;
    this.close('client disconnected');
  }

  /**
   * Illegal or malformed input: on MQTT 5 a DISCONNECT with the reason code
   * [MQTT-4.13.1-1], then the connection is closed.
   */
  protocolViolation(reasonCode: number, reason: string): void {
    const code = reasonCode.toString(16);
    this.broker.metrics.mqttProtocolErrors.inc({ reason: code });
    // a flood of bad packets must not flood the log: one line a minute per reason code
    const fields = { clientId: this.clientId, remote: this.remoteAddress, reasonCode, reason };
    this.broker.protocolErrors.log('info', code, fields, 'closing connection: protocol error');
    this.log.debug({ clientId: this.clientId, reasonCode, reason }, 'closing connection');
    this.close(reason, reasonCode);
  }

  /**
   * Closes the connection. With a reason code, an MQTT 5 client that finished
   * CONNECT first gets a DISCONNECT carrying it.
   */
  close(reason: string, disconnectReasonCode?: number, serverReference?: string): void {
    if (this.#over()) return;
    const wasConnected = this.#status === 'connected';
    this.#status = 'closing';
    this.log.debug({ clientId: this.clientId, reason }, 'close');
    if (wasConnected && this.protocolVersion === 5 && disconnectReasonCode !== undefined) {
      this.send({
        cmd: 'disconnect',
        reasonCode: disconnectReasonCode,
        properties: {
          reasonString: reason,
          ...(serverReference !== undefined ? { serverReference } : {}),
        },
      });
    }
    this.#flushGathered();
    this.#socket.end();
    // Read on (and discard: the status is closing) so the client's FIN arrives even if it
    // was sending when reading stopped; otherwise the socket lingers until destroyed.
    this.#socket.resume();
    // The broker lets go now, not when the socket is gone: a client reconnecting
    // in between must find its session ended or detached, not taken over.
    this.#release();
    // A client that never reads must not hold the socket open forever. The timer goes when the
    // socket does (#onClose): left running, it kept the connection and what its parser held.
    clearTimeout(this.#timer);
    this.broker.keepAlive.remove(this);
    this.#timer = setTimeout(() => this.#socket.destroy(), 5_000).unref();
  }

  /**
   * A PUBLISH beyond `mqtt.maxPublishRate`. MQTT 5 has a reason code for it: DISCONNECT 0x96,
   * and the publish is not taken (QoS 1/2 come again on the next connection). MQTT 3.1/3.1.1
   * have none: the publish is taken and the socket not read until the rate allows (TCP slows
   * the client down). Returns whether the publish is to be handled.
   */
  #withinRate(): boolean {
    const waitMs = (this.#publishRate as PublishRate).take();
    if (waitMs === 0) return true;
    const fields = { clientId: this.clientId, address: this.remoteAddress };
    if (this.protocolVersion === 5) {
      this.broker.refusals.refuse('mqtt.maxPublishRate', fields, 'connection closed');
      this.close('message rate too high', ReasonCode.MessageRateTooHigh);
      return false;
    }
    if (!this.#is(RATE_PAUSED)) {
      this.broker.refusals.refuse('mqtt.maxPublishRate', fields, 'connection not read for a while');
      this.#set(RATE_PAUSED, true);
      this.#socket.pause();
      this.#resumeWithinRate(waitMs);
    }
    return true;
  }

  /** Reading resumes once the publishes taken are within the rate (those of a whole chunk too). */
  #resumeWithinRate(waitMs: number): void {
    setTimeout(() => {
      const debtMs = (this.#publishRate as PublishRate).debtMs();
      if (debtMs > 0) {
        this.#resumeWithinRate(debtMs);
        return;
      }
      this.#set(RATE_PAUSED, false);
      this.#lastReceivedAt = clock();
      this.#resumeReading();
    }, waitMs).unref();
  }

  /** Reading goes on, unless something else still holds it (Kafka, acknowledgements, shutdown). */
  #resumeReading(): void {
    const held = this.#is(NOT_READING) || this.#held !== undefined;
    if (!held && this.#status === 'connected') this.#socket.resume();
  }

  /** Stops reading while too many acknowledgements wait for Kafka. */
  throttleIfBusy(): void {
    if (!this.#is(READ_PAUSED) && (this.#acks?.pending ?? 0) >= this.options.receiveMaximum) {
      this.#set(READ_PAUSED, true);
      this.#socket.pause();
    }
  }

  /** Shutdown: read nothing more, but keep writing the acknowledgements still due. */
  stopReading(): void {
    this.#set(READ_STOPPED, true);
    this.#socket.pause();
  }

  #resumeIfDrained(): void {
    if (this.#is(READ_PAUSED) && (this.#acks?.pending ?? 0) <= this.options.receiveMaximum / 2) {
      this.#set(READ_PAUSED, false);
      this.#lastReceivedAt = clock();
      this.#resumeReading();
    }
  }

  #onData(chunk: Buffer): void {
    // counted per chunk, not per packet: what the sockets carried, for $SYS/broker/bytes/received
    this.broker.traffic.bytesReceived += chunk.length;
    if (this.#over()) return;
    this.#lastReceivedAt = clock();
    const scanner = FrameScanner.of(this.#scanner);
    const problem: FrameProblem | undefined = scanner.scan(chunk, this.options.maxPacketSize);
    this.#scanner = scanner.kept();
    // the whole packets before a refused one are handled first, in order
    const whole =
      problem === undefined ? chunk : chunk.subarray(0, Math.max(0, scanner.problemStart));
    if (whole.length > 0) {
      // [MQTT-3.1.0-1] the first packet is CONNECT: anything else is refused at its first byte,
      // not once the whole packet its garbage announces has arrived (maybe never)
      if (this.#status === 'awaiting-connect' && this.#carry === undefined && whole[0] !== 0x10) {
        this.protocolViolation(
          ReasonCode.MalformedPacket,
          'malformed packet: the first is not CONNECT',
        );
        return;
      }
      this.#frame(whole);
    }
    if (problem === undefined || this.#over()) return;
    if (problem === 'packet-too-large') {
      this.protocolViolation(
        ReasonCode.PacketTooLarge,
        `packet larger than the maximum packet size of ${this.options.maxPacketSize} bytes`,
      );
    } else {
      this.protocolViolation(ReasonCode.MalformedPacket, PROBLEM_TEXT[problem]);
    }
  }

  /** Whether the connection is closing or closed (a packet handled may have ended it). */
  #over(): boolean {
    return this.#status === 'closing' || this.#status === 'closed';
  }

  /**
   * Splits the bytes into packets here (the frame scanner has checked their lengths): a plain
   * PUBLISH is decoded without mqtt-packet (see publish-fast-path.ts); runs of other
   * packets go to mqtt-packet whole, so a parser never holds part of one and can be shared. The start of a packet cut by the end of
   * the chunk waits for the next chunk.
   */
  #frame(chunk: Buffer): void {
    const bytes = chunk;
    let offset = 0;
    const carry = this.#carry;
    if (carry !== undefined) {
      const carried = carry.reduce((sum, part) => sum + part.length, 0);
      // the fixed header (at most 5 bytes) is in the first part, or in the first few bytes
      const start = carry[0] as Buffer;
      const head = start.length >= 5 ? start : Buffer.concat([...carry, chunk.subarray(0, 4)]);
      const size = frameSize(head, 0);
      if (size < 0 || size - carried > chunk.length) {
        carry.push(chunk);
        return;
      }
      this.#carry = undefined;
      const packet = Buffer.concat([...carry, chunk.subarray(0, size - carried)]);
      this.#frames(packet, 0);
      offset = size - carried;
      if (offset === chunk.length || this.#over()) {
        return;
      }
    }
    const rest = this.#frames(bytes, offset);
    if (rest < bytes.length && !this.#over()) {
      this.#carry = [bytes.subarray(rest)];
    }
  }

  /** Handles the whole packets of `bytes` from `start`; returns where the first cut one starts. */
  #frames(bytes: Buffer, start: number): number {
    let offset = start;
    /** Start of a run of packets for mqtt-packet; -1: none. */
    let runStart = -1;
    while (offset < bytes.length) {
      const end = frameEnd(bytes, offset);
      if (end < 0) break;
      const packet =
        this.#status === 'connected'
          ? decodePlainPublish(bytes, offset, end, this.protocolVersion)
          : undefined;
      if (packet === undefined) {
        if (runStart < 0) runStart = offset;
      } else {
        if (runStart >= 0) {
          this.#parse(bytes.subarray(runStart, offset));
          runStart = -1;
        }
        this.#onPacket(packet);
      }
      offset = end;
      if (this.#over()) return bytes.length;
    }
    if (runStart >= 0) this.#parse(bytes.subarray(runStart, offset));
    return offset;
  }

  /** Whole packets for mqtt-packet (parsers shared by all connections). */
  #parse(packets: Buffer): void {
    parseWholePackets(packets, this.#wireVersion, {
      packet: (packet) => {
        // the packets after CONNECT are read in its version, even before CONNECT is handled
        if (packet.cmd === 'connect') this.#wireVersion = packet.protocolVersion ?? 4;
        this.#onPacket(packet);
      },
      error: (error) => {
        if (this.#status === 'awaiting-connect' && error.message === 'Invalid protocol version') {
          // [MQTT-3.1.2-2] CONNACK 0x01 in the 3.1.1 format every client version can read
          this.#socket.write(UNACCEPTABLE_PROTOCOL_VERSION);
        }
        this.protocolViolation(ReasonCode.MalformedPacket, `malformed packet: ${error.message}`);
      },
    });
  }

  #onClose(): void {
    this.#status = 'closed';
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.broker.keepAlive.remove(this);
    this.#identityExpiry?.cancel();
    // the socket's slot in the connection counts is freed exactly once
    if (!this.#is(SLOT_RELEASED)) {
      this.#set(SLOT_RELEASED, true);
      this.broker.socketClosed(this.remoteAddress, this.refusedBy);
    }
    this.#release();
  }

  /** Tells the broker, once, that this connection is over. */
  #release(): void {
    if (this.#is(RELEASED)) return;
    this.#set(RELEASED, true);
    this.broker.connectionClosed(
      this,
      this.#is(ACCEPTED) && this.#is(SEND_WILL) ? this.will : undefined,
    );
  }
}

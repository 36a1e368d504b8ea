/**
 * Fuzzing of the bridge's MQTT front end (issue 14): a seeded PRNG; generators of valid packets
 * of every type for MQTT 3.1 (level 3), 3.1.1 (4) and 5.0 (5), encoded by mqtt-packet; mutators
 * (truncation, bit flips, wrong fixed-header flags, oversized and invalid Remaining Lengths,
 * repeated, unknown and misplaced MQTT 5 properties, ill-formed UTF-8, random bytes); and a
 * runner that plays cases over real sockets and checks what the server does with each
 * connection. Shared by test/integration/fuzz.test.ts and scripts/fuzz.ts (no vitest here).
 *
 * Every case is a function of (seed, index) only, so a failure names the seed and the case and
 * the case can be played again: `caseFor(seed, index)`.
 */
import { connect, type Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import mqttPacket, {
  type IConnectPacket,
  type IPublishPacket,
  type ISubscribePacket,
  type ISubscription,
  type Packet,
  type QoS,
  type UserProperties,
} from 'mqtt-packet';
import WebSocket from 'ws';

export type Version = 3 | 4 | 5;

// ---------------------------------------------------------------------------------------------
// PRNG

/** mulberry32: small, fast, and the same sequence on every platform for a seed. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  uint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** In [0, 1). */
  float(): number {
    return this.uint32() / 2 ** 32;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from nothing');
    return items[this.int(items.length)] as T;
  }

  bytes(n: number): Buffer {
    const buffer = Buffer.alloc(n);
    for (let i = 0; i < n; i++) buffer[i] = this.int(256);
    return buffer;
  }

  hex(n: number): string {
    return this.bytes(Math.ceil(n / 2))
      .toString('hex')
      .slice(0, n);
  }
}

/** The seed of case `index` of a run with `seed` (independent of the order cases run in). */
export function caseSeed(seed: number, index: number): number {
  let x = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A seed from FUZZ_SEED (decimal or 0x hex), else a fixed default. */
export function seedFromEnv(fallback: number): number {
  const text = process.env.FUZZ_SEED;
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new Error(`FUZZ_SEED must be an integer 0..4294967295, not ${text}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Valid packets

/** Put in one UTF-8 string field of a packet, where the bad-utf8 mutator finds and spoils it. */
export const MARK = 'ZQZQ';
const MARK_BYTES = Buffer.from(MARK);

/** Topic names the fuzz connections publish to (fuzz/{device}/data is the mapped one). */
const TOPICS = [
  'fuzz/a/data',
  'fuzz/b/data',
  'fuzz/c',
  'a/b/c',
  'x',
  '/',
  'fuzz//data',
  'fuzz/é/data',
  '$delay/1/fuzz/d/data',
  'responses/x',
  '$SYS/x',
] as const;

/** Will topics: those a client may publish to (a will to `$SYS/` is refused, as a publish is). */
const WILL_TOPICS = TOPICS.filter((topic) => !topic.startsWith('$SYS/'));

const FILTERS = [
  '#',
  '+',
  'fuzz/#',
  'fuzz/+/data',
  '$share/g/fuzz/#',
  '$share/g/#',
  '$share//x',
  'a/+/c',
  'a/#/b',
  'fuzz/a#',
  '+/+/+',
  '$SYS/#',
  '',
] as const;

export const PACKET_TYPES = [
  'connect',
  'connack',
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubcomp',
  'subscribe',
  'suback',
  'unsubscribe',
  'unsuback',
  'pingreq',
  'pingresp',
  'disconnect',
  'auth',
] as const;
export type PacketType = (typeof PACKET_TYPES)[number];

/** What the client sends in a normal session (the server-only types come less often). */
const CLIENT_TYPES: readonly PacketType[] = [
  'publish',
  'publish',
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubcomp',
  'subscribe',
  'subscribe',
  'unsubscribe',
  'pingreq',
  'disconnect',
  'auth',
  'connect',
  'connack',
  'suback',
  'unsuback',
  'pingresp',
];

function userProperties(rng: Rng, mark: boolean): UserProperties {
  const properties: UserProperties = {};
  const count = rng.range(1, 3);
  for (let i = 0; i < count; i++) {
    const name = rng.pick(['k', 'trace', 'é', 'dup']);
    const value = rng.pick(['v', '', 'x'.repeat(rng.range(1, 40))]);
    const existing = properties[name];
    // a repeated name (allowed: User Property may appear more than once)
    properties[name] = existing === undefined ? value : [existing as string, value].flat();
  }
  if (mark) properties[`u${MARK}`] = 'v';
  return properties;
}

/** A string field carrying MARK when `mark`. */
const marked = (mark: boolean, text: string): string => (mark ? `${text}${MARK}` : text);

export interface Generated {
  packet: Packet;
  /** Whether one of its UTF-8 string fields carries MARK. */
  marked: boolean;
}

/**
 * A valid CONNECT. A `prelude` is one the bridge must accept (clean, no enhanced
 * authentication, no zero limits): the fuzzing then happens in the connected state.
 */
export function connectPacket(
  rng: Rng,
  version: Version,
  { prelude = false, mark = false } = {},
): Generated {
  const roll = rng.float();
  // a few shared client ids, so that connections take sessions over from one another
  const clientId =
    roll < 0.15
      ? `fz-pool-${rng.int(4)}`
      : version !== 3 && roll < 0.25
        ? ''
        : `fz-${rng.hex(version === 3 ? 8 : rng.range(4, 20))}`;
  const packet: IConnectPacket = {
    cmd: 'connect',
    protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: version,
    clientId,
    // mqtt-packet encodes an empty client id with a clean session only
    clean: prelude || clientId === '' || rng.chance(0.8),
    keepalive: prelude ? rng.pick([0, 30, 60]) : rng.pick([0, 0, 1, 30, 65_535]),
  };
  const markAt = mark ? rng.pick(['clientId', 'username', 'will', 'property'] as const) : 'none';
  if (markAt === 'clientId') packet.clientId = `fz${MARK}`;
  if (rng.chance(0.3) || markAt === 'username') {
    packet.username = marked(markAt === 'username', rng.pick(['user', 'é', '']));
    if (rng.chance(0.5)) packet.password = rng.bytes(rng.range(0, 12));
  }
  if (rng.chance(prelude ? 0.2 : 0.3) || markAt === 'will') {
    packet.will = {
      topic: markAt === 'will' ? `fuzz/${MARK}/data` : rng.pick(WILL_TOPICS),
      payload: rng.bytes(rng.range(0, 16)),
      qos: rng.int(3) as QoS,
      retain: rng.chance(0.1),
    };
    if (version === 5 && rng.chance(0.5)) {
      packet.will.properties = {
        willDelayInterval: rng.range(0, 2),
        ...(rng.chance(0.5) ? { messageExpiryInterval: rng.range(1, 60) } : {}),
        ...(rng.chance(0.3) ? { contentType: 'text/plain' } : {}),
        ...(rng.chance(0.3) ? { responseTopic: 'responses/w' } : {}),
        ...(rng.chance(0.3) ? { correlationData: rng.bytes(4) } : {}),
        ...(rng.chance(0.3) ? { userProperties: userProperties(rng, false) } : {}),
      };
    }
  }
  if (version === 5 && (rng.chance(0.6) || markAt === 'property')) {
    packet.properties = {
      ...(rng.chance(0.3) && !prelude ? { sessionExpiryInterval: rng.range(0, 2) } : {}),
      ...(rng.chance(0.3) ? { receiveMaximum: rng.range(prelude ? 1 : 0, 65_535) } : {}),
      ...(rng.chance(0.3) ? { maximumPacketSize: rng.range(prelude ? 64 : 0, 1_000_000) } : {}),
      ...(rng.chance(0.3) ? { topicAliasMaximum: rng.range(0, 10) } : {}),
      ...(rng.chance(0.2) ? { requestResponseInformation: rng.chance(0.5) } : {}),
      ...(rng.chance(0.2) ? { requestProblemInformation: rng.chance(0.5) } : {}),
      ...(rng.chance(0.3) || markAt === 'property'
        ? { userProperties: userProperties(rng, markAt === 'property') }
        : {}),
      ...(!prelude && rng.chance(0.05)
        ? {
            authenticationMethod: rng.pick(['SCRAM-SHA-256', 'X']),
            authenticationData: rng.bytes(8),
          }
        : {}),
    };
  }
  if (version !== 5 && packet.password !== undefined && packet.username === undefined) {
    packet.username = 'user';
  }
  return { packet, marked: markAt !== 'none' };
}

const PUBACK_CODES = [0, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const DISCONNECT_CODES = [0, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8d, 0x93, 0x95, 0x98];

function messageId(rng: Rng): number {
  return rng.chance(0.7) ? rng.range(1, 20) : rng.range(1, 65_535);
}

function reasonProperties(rng: Rng, mark: boolean): { reasonString?: string } | undefined {
  if (mark) return { reasonString: marked(true, 'r') };
  return rng.chance(0.3) ? { reasonString: rng.pick(['r', 'é', '']) } : undefined;
}

/** A valid packet of `cmd` for `version` (AUTH only exists in 5; asked for 3/4 it is 5's). */
export function validPacket(rng: Rng, version: Version, cmd: PacketType, mark = false): Generated {
  const v5 = version === 5;
  switch (cmd) {
    case 'connect':
      return connectPacket(rng, version, { mark });
    case 'connack':
      return {
        packet: v5
          ? {
              cmd,
              sessionPresent: rng.chance(0.5),
              reasonCode: rng.pick([0, 0x80, 0x87]),
              properties: { ...reasonProperties(rng, mark) },
            }
          : { cmd, sessionPresent: rng.chance(0.5), returnCode: rng.int(6) },
        marked: mark && v5,
      };
    case 'publish': {
      const qos = rng.int(3) as QoS;
      const useAlias = v5 && rng.chance(0.2);
      const packet: IPublishPacket = {
        cmd,
        topic: mark ? `fuzz/${MARK}/data` : useAlias && rng.chance(0.5) ? '' : rng.pick(TOPICS),
        payload: rng.bytes(rng.chance(0.9) ? rng.range(0, 64) : rng.range(64, 4096)),
        qos,
        dup: qos > 0 && rng.chance(0.2),
        retain: rng.chance(0.1),
        ...(qos > 0 ? { messageId: messageId(rng) } : {}),
      };
      if (v5 && (rng.chance(0.6) || useAlias)) {
        packet.properties = {
          ...(rng.chance(0.3) ? { payloadFormatIndicator: rng.chance(0.5) } : {}),
          ...(rng.chance(0.3) ? { messageExpiryInterval: rng.range(1, 60) } : {}),
          ...(rng.chance(0.3) ? { contentType: rng.pick(['text/plain', 'é', '']) } : {}),
          ...(rng.chance(0.2) ? { responseTopic: rng.pick(['responses/x', 'r/+']) } : {}),
          ...(rng.chance(0.2) ? { correlationData: rng.bytes(rng.range(0, 8)) } : {}),
          ...(rng.chance(0.3) ? { userProperties: userProperties(rng, false) } : {}),
          ...(useAlias ? { topicAlias: rng.range(1, 12) } : {}),
        };
      }
      return { packet, marked: mark };
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': {
      const codes = cmd === 'puback' || cmd === 'pubrec' ? PUBACK_CODES : [0, 0x92];
      const properties = v5 ? reasonProperties(rng, mark) : undefined;
      return {
        packet: {
          cmd,
          messageId: messageId(rng),
          ...(v5 ? { reasonCode: rng.pick(codes) } : {}),
          ...(properties ? { properties } : {}),
        },
        marked: mark && v5,
      };
    }
    case 'subscribe': {
      const subscriptions: ISubscription[] = [];
      const count = rng.range(1, 3);
      for (let i = 0; i < count; i++) {
        const subscription: ISubscription = {
          topic: mark && i === 0 ? `fuzz/${MARK}` : rng.pick(FILTERS),
          qos: rng.int(3) as QoS,
        };
        if (v5) {
          subscription.nl = rng.chance(0.2);
          subscription.rap = rng.chance(0.2);
          subscription.rh = rng.int(3);
        }
        subscriptions.push(subscription);
      }
      const packet: ISubscribePacket = { cmd, messageId: messageId(rng), subscriptions };
      if (v5 && rng.chance(0.4)) {
        packet.properties = {
          ...(rng.chance(0.6) ? { subscriptionIdentifier: rng.range(1, 1000) } : {}),
          ...(rng.chance(0.4) ? { userProperties: userProperties(rng, false) } : {}),
        };
      }
      return { packet, marked: mark };
    }
    case 'suback':
      return {
        packet: {
          cmd,
          messageId: messageId(rng),
          granted: [rng.pick(v5 ? [0, 1, 2, 0x80, 0x87] : [0, 1, 2, 0x80])],
          ...(v5 ? { properties: { ...reasonProperties(rng, mark) } } : {}),
        },
        marked: mark && v5,
      };
    case 'unsubscribe':
      return {
        packet: {
          cmd,
          messageId: messageId(rng),
          unsubscriptions: mark
            ? [`fuzz/${MARK}`]
            : Array.from({ length: rng.range(1, 3) }, () => rng.pick(FILTERS)),
          ...(v5 && rng.chance(0.3)
            ? { properties: { userProperties: userProperties(rng, false) } }
            : {}),
        },
        marked: mark,
      };
    case 'unsuback':
      return {
        packet: {
          cmd,
          messageId: messageId(rng),
          ...(v5
            ? { granted: [rng.pick([0, 0x11])], properties: { ...reasonProperties(rng, mark) } }
            : {}),
        } as Packet,
        marked: mark && v5,
      };
    case 'pingreq':
    case 'pingresp':
      return { packet: { cmd }, marked: false };
    case 'disconnect': {
      if (!v5) return { packet: { cmd }, marked: false };
      return {
        packet: {
          cmd,
          reasonCode: rng.pick(DISCONNECT_CODES),
          properties: {
            ...(rng.chance(0.3) ? { sessionExpiryInterval: rng.range(0, 2) } : {}),
            ...reasonProperties(rng, mark),
            ...(rng.chance(0.2) ? { serverReference: 'other:1883' } : {}),
            ...(rng.chance(0.2) ? { userProperties: userProperties(rng, false) } : {}),
          },
        },
        marked: mark,
      };
    }
    case 'auth':
      return {
        packet: {
          cmd,
          reasonCode: rng.pick([0, 0x18, 0x19]),
          properties: {
            authenticationMethod: marked(mark, rng.pick(['SCRAM-SHA-256', 'X'])),
            ...(rng.chance(0.7) ? { authenticationData: rng.bytes(rng.range(0, 32)) } : {}),
            ...(rng.chance(0.2) ? { reasonString: 'r' } : {}),
          },
        },
        marked: mark,
      };
  }
}

/** mqtt-packet's encoding of `packet` for `version`; AUTH is always encoded as MQTT 5. */
export function encode(packet: Packet, version: Version): Buffer {
  return mqttPacket.generate(packet, { protocolVersion: packet.cmd === 'auth' ? 5 : version });
}

// ---------------------------------------------------------------------------------------------
// Framing helpers

/** A Variable Byte Integer [MQTT-1.5.5]. */
export function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return Buffer.from(bytes);
}

/** Reads a Variable Byte Integer at `offset`: its value and its length in bytes. */
export function readVarint(buffer: Buffer, offset: number): { value: number; bytes: number } {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 4; i++) {
    const byte = buffer[offset + i];
    if (byte === undefined) throw new Error('varint cut short');
    value += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) === 0) return { value, bytes: i + 1 };
  }
  throw new Error('varint longer than 4 bytes');
}

/** The first byte and the body of one well-formed packet. */
export function split(bytes: Buffer): { first: number; body: Buffer } {
  const { value, bytes: lengthBytes } = readVarint(bytes, 1);
  return { first: bytes[0] ?? 0, body: bytes.subarray(1 + lengthBytes, 1 + lengthBytes + value) };
}

export function frame(first: number, body: Buffer, length = varint(body.length)): Buffer {
  return Buffer.concat([Buffer.from([first]), length, body]);
}

// ---------------------------------------------------------------------------------------------
// MQTT 5 properties, encoded here so that they can be repeated, unknown, misplaced or broken

type PropertyType = 'byte' | 'int16' | 'int32' | 'var' | 'string' | 'pair' | 'binary';

const PROPERTY_IDS: Record<string, [number, PropertyType]> = {
  payloadFormatIndicator: [0x01, 'byte'],
  messageExpiryInterval: [0x02, 'int32'],
  contentType: [0x03, 'string'],
  responseTopic: [0x08, 'string'],
  correlationData: [0x09, 'binary'],
  subscriptionIdentifier: [0x0b, 'var'],
  sessionExpiryInterval: [0x11, 'int32'],
  assignedClientIdentifier: [0x12, 'string'],
  serverKeepAlive: [0x13, 'int16'],
  authenticationMethod: [0x15, 'string'],
  authenticationData: [0x16, 'binary'],
  requestProblemInformation: [0x17, 'byte'],
  willDelayInterval: [0x18, 'int32'],
  requestResponseInformation: [0x19, 'byte'],
  responseInformation: [0x1a, 'string'],
  serverReference: [0x1c, 'string'],
  reasonString: [0x1f, 'string'],
  receiveMaximum: [0x21, 'int16'],
  topicAliasMaximum: [0x22, 'int16'],
  topicAlias: [0x23, 'int16'],
  maximumQoS: [0x24, 'byte'],
  retainAvailable: [0x25, 'byte'],
  userProperties: [0x26, 'pair'],
  maximumPacketSize: [0x27, 'int32'],
  wildcardSubscriptionAvailable: [0x28, 'byte'],
  subscriptionIdentifiersAvailable: [0x29, 'byte'],
  sharedSubscriptionAvailable: [0x2a, 'byte'],
};

/** Property ids MQTT 5 does not define. */
const UNKNOWN_PROPERTY_IDS = [
  0x00, 0x04, 0x05, 0x06, 0x07, 0x0a, 0x10, 0x14, 0x20, 0x2b, 0x7f, 0xff,
];

/** Properties a client may send once in each packet type (MQTT 5.0 §2.2.2.2). */
const SINGLE_PROPERTIES: Partial<Record<PacketType, string[]>> = {
  connect: ['sessionExpiryInterval', 'receiveMaximum', 'maximumPacketSize', 'topicAliasMaximum'],
  publish: ['payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'topicAlias'],
  puback: ['reasonString'],
  pubrec: ['reasonString'],
  pubrel: ['reasonString'],
  pubcomp: ['reasonString'],
  subscribe: ['subscriptionIdentifier'],
  unsubscribe: ['reasonString'],
  disconnect: ['sessionExpiryInterval', 'reasonString'],
  auth: ['authenticationMethod', 'reasonString'],
  connack: ['reasonString'],
  suback: ['reasonString'],
  unsuback: ['reasonString'],
};

/** Properties only the server sends. */
const SERVER_PROPERTIES = [
  'assignedClientIdentifier',
  'serverKeepAlive',
  'responseInformation',
  'maximumQoS',
  'retainAvailable',
  'wildcardSubscriptionAvailable',
];

function u16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeUInt16BE(value & 0xffff);
  return buffer;
}

function lengthPrefixed(bytes: Buffer): Buffer {
  return Buffer.concat([u16(bytes.length), bytes]);
}

function propertyValue(type: PropertyType, value: unknown): Buffer {
  switch (type) {
    case 'byte':
      return Buffer.from([Number(value) & 0xff]);
    case 'int16':
      return u16(Number(value));
    case 'int32': {
      const buffer = Buffer.alloc(4);
      buffer.writeUInt32BE(Number(value) >>> 0);
      return buffer;
    }
    case 'var':
      return varint(Number(value));
    case 'string':
      return lengthPrefixed(Buffer.isBuffer(value) ? value : Buffer.from(String(value)));
    case 'binary':
      return lengthPrefixed(Buffer.isBuffer(value) ? value : Buffer.from(String(value)));
    case 'pair': {
      const [name, text] = value as [string, string];
      return Buffer.concat([lengthPrefixed(Buffer.from(name)), lengthPrefixed(Buffer.from(text))]);
    }
  }
}

/** One property, encoded (identifier and value). */
export function encodeProperty(name: string, value: unknown): Buffer {
  const known = PROPERTY_IDS[name];
  if (!known) throw new Error(`unknown property ${name}`);
  return Buffer.concat([Buffer.from([known[0]]), propertyValue(known[1], value)]);
}

/** The properties of a packet as encoded entries, user properties one entry per pair. */
function propertyEntries(properties: object | undefined): Buffer[] {
  const entries: Buffer[] = [];
  for (const [name, value] of Object.entries(properties ?? {})) {
    if (value === undefined) continue;
    if (name === 'userProperties') {
      for (const [key, values] of Object.entries(value as UserProperties)) {
        for (const text of [values].flat()) entries.push(encodeProperty(name, [key, text]));
      }
    } else {
      entries.push(encodeProperty(name, typeof value === 'boolean' ? Number(value) : value));
    }
  }
  return entries;
}

/** Where the Properties of a v5 packet start in its body (where they would be, if absent). */
function propertiesOffset(packet: Packet): number | undefined {
  switch (packet.cmd) {
    case 'connect':
      return 10; // "MQTT", level, flags, keep alive
    case 'connack':
      return 2;
    case 'publish':
      return 2 + Buffer.byteLength(packet.topic) + (packet.qos > 0 ? 2 : 0);
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return 3;
    case 'subscribe':
    case 'suback':
    case 'unsubscribe':
    case 'unsuback':
      return 2;
    case 'disconnect':
    case 'auth':
      return 1;
    default:
      return undefined;
  }
}

/** `bytes` (a v5 packet) with its Properties replaced by `block` (the raw property bytes). */
function withProperties(
  packet: Packet,
  bytes: Buffer,
  block: Buffer,
  declaredLength = block.length,
): Buffer | undefined {
  const offset = propertiesOffset(packet);
  if (offset === undefined) return undefined;
  const { first, body } = split(bytes);
  let before: Buffer;
  let after: Buffer;
  if (body.length <= offset) {
    // no Properties written (e.g. PUBACK 0x00 without properties): reason code 0 and add them
    before = Buffer.concat([body, Buffer.alloc(offset - body.length)]);
    after = Buffer.alloc(0);
  } else {
    const old = readVarint(body, offset);
    before = body.subarray(0, offset);
    after = body.subarray(offset + old.bytes + old.value);
  }
  return frame(first, Buffer.concat([before, varint(declaredLength), block, after]));
}

// ---------------------------------------------------------------------------------------------
// Mutations

/**
 * One packet's worth of bytes to send. `framing` says whether the Remaining Length still
 * matches the bytes sent (the next packet starts where the server thinks it does);
 * `mustClose`, that the server must close the connection once it reads them [MQTT-4.13.1-1].
 */
export interface Step {
  label: string;
  bytes: Buffer;
  framing: 'intact' | 'broken';
  mustClose: boolean;
  /** Sizes of the writes the bytes go out in (one write when absent). */
  chunks?: number[];
}

const BAD_UTF8: readonly number[][] = [
  [0xc3, 0x28, 0x61, 0x61], // a lead byte without its continuation
  [0xed, 0xa0, 0x80, 0x61], // an encoded surrogate (U+D800)
  [0xff, 0x61, 0x61, 0x61], // a byte UTF-8 never uses
  [0x61, 0x00, 0x61, 0x61], // U+0000 [MQTT-1.5.4-2]
  [0xc0, 0xaf, 0x61, 0x61], // an overlong "/"
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xe2, 0x82, 0x61, 0x61], // a three-byte sequence cut short
  [0x80, 0x61, 0x61, 0x61], // a lone continuation byte
  [0xf8, 0x88, 0x80, 0x80], // a five-byte form
];

export type Mutation =
  | 'none'
  | 'truncate'
  | 'bit-flip'
  | 'byte-set'
  | 'wrong-flags'
  | 'length-over-max'
  | 'length-five-bytes'
  | 'length-too-long'
  | 'length-too-short'
  | 'length-non-minimal'
  | 'trailing-bytes'
  | 'bad-utf8'
  | 'property-repeated'
  | 'property-unknown'
  | 'property-misplaced'
  | 'property-bad-utf8'
  | 'property-cut-short'
  | 'random-body'
  | 'reserved-type';

const MUTATIONS: readonly Mutation[] = [
  'none',
  'truncate',
  'bit-flip',
  'bit-flip',
  'byte-set',
  'wrong-flags',
  'length-over-max',
  'length-five-bytes',
  'length-too-long',
  'length-too-short',
  'length-non-minimal',
  'trailing-bytes',
  'bad-utf8',
  'bad-utf8',
  'property-repeated',
  'property-unknown',
  'property-misplaced',
  'property-bad-utf8',
  'property-cut-short',
  'random-body',
  'reserved-type',
];

const PROPERTY_MUTATIONS = new Set<Mutation>([
  'property-repeated',
  'property-unknown',
  'property-misplaced',
  'property-bad-utf8',
  'property-cut-short',
]);

/** The fixed-header flags MQTT requires for a packet type (publish: any but QoS 3). */
function requiredFlags(type: number): number | undefined {
  if (type === 3 || type === 0) return undefined;
  return type === 6 || type === 8 || type === 10 ? 2 : 0;
}

function intact(label: string, bytes: Buffer, mustClose = false): Step {
  return { label, bytes, framing: 'intact', mustClose };
}

function broken(label: string, bytes: Buffer, mustClose = false): Step {
  return { label, bytes, framing: 'broken', mustClose };
}

export interface MutateOptions {
  /** The bridge's mqtt.maxPacketSize. */
  maxPacketSize: number;
}

/**
 * A packet of `cmd` for `version`, valid or spoiled by `mutation` (a random one when absent).
 * A mutation that does not apply to the packet (properties on 3.1.1) gives another one.
 */
export function mutatedPacket(
  rng: Rng,
  version: Version,
  cmd: PacketType,
  options: MutateOptions,
  mutation: Mutation = rng.pick(MUTATIONS),
): Step {
  const v5 = version === 5 || cmd === 'auth';
  const chosen = PROPERTY_MUTATIONS.has(mutation) && !v5 ? 'bad-utf8' : mutation;
  const mark = chosen === 'bad-utf8';
  const generated = validPacket(rng, version, cmd, mark);
  const bytes = encode(generated.packet, version);
  const label = `${cmd}/v${version}/${chosen}`;
  const { first, body } = split(bytes);
  const type = first >> 4;
  switch (chosen) {
    case 'none':
      return intact(label, bytes);
    case 'truncate':
      return broken(label, bytes.subarray(0, rng.range(1, Math.max(1, bytes.length - 1))));
    case 'bit-flip':
    case 'byte-set': {
      const copy = Buffer.from(bytes);
      const headerLength = bytes.length - body.length;
      let header = false;
      for (let i = rng.range(1, 4); i > 0; i--) {
        const at = rng.int(copy.length);
        if (at < headerLength) header = true;
        if (chosen === 'bit-flip') copy[at] = (copy[at] ?? 0) ^ (1 << rng.int(8));
        else copy[at] = rng.pick([0x00, 0xff, 0x7f, 0x80, 0x01]);
      }
      return header ? broken(label, copy) : intact(label, copy);
    }
    case 'wrong-flags': {
      const required = requiredFlags(type);
      if (required === undefined) {
        // PUBLISH with both QoS bits set [MQTT-3.3.1-4]
        return intact(label, frame(first | 0x06, body), true);
      }
      const flags = (required + rng.range(1, 15)) & 0x0f;
      return intact(label, frame((type << 4) | flags, body), true);
    }
    case 'length-over-max': {
      const declared = rng.range(options.maxPacketSize, 268_435_455);
      return broken(label, frame(first, body.subarray(0, rng.int(8)), varint(declared)), true);
    }
    case 'length-five-bytes':
      return broken(
        label,
        frame(
          first,
          body,
          Buffer.from(
            rng.pick([
              [0xff, 0xff, 0xff, 0xff, 0x7f],
              [0x80, 0x80, 0x80, 0x80, 0x01],
              [0x81, 0x80, 0x80, 0x80, 0x80, 0x00],
            ]),
          ),
        ),
        true,
      );
    case 'length-too-long':
      return broken(label, frame(first, body, varint(body.length + rng.range(1, 1000))));
    case 'length-too-short':
      return body.length === 0
        ? broken(label, Buffer.concat([bytes, rng.bytes(rng.range(1, 8))]))
        : broken(label, frame(first, body, varint(rng.int(body.length))));
    case 'length-non-minimal': {
      // the same value with padding continuation bytes ([MQTT-1.5.5-1] asks for the shortest)
      const minimal = varint(body.length);
      if (minimal.length >= 4) return intact(label, bytes);
      const padded = Buffer.concat([minimal, Buffer.alloc(rng.range(1, 4 - minimal.length))]);
      for (let i = 0; i < padded.length - 1; i++) padded[i] = (padded[i] ?? 0) | 0x80;
      return intact(label, frame(first, body, padded));
    }
    case 'trailing-bytes':
      return intact(label, frame(first, Buffer.concat([body, rng.bytes(rng.range(1, 16))])));
    case 'bad-utf8': {
      const at = bytes.indexOf(MARK_BYTES);
      if (!generated.marked || at === -1) return intact(`${cmd}/v${version}/none`, bytes);
      const copy = Buffer.from(bytes);
      Buffer.from(rng.pick(BAD_UTF8)).copy(copy, at);
      return intact(label, copy, true);
    }
    case 'property-repeated':
    case 'property-unknown':
    case 'property-misplaced':
    case 'property-bad-utf8':
    case 'property-cut-short': {
      const properties = 'properties' in generated.packet ? generated.packet.properties : undefined;
      const entries = propertyEntries(properties);
      let declared: number | undefined;
      if (chosen === 'property-repeated') {
        const name = rng.pick(SINGLE_PROPERTIES[cmd] ?? ['reasonString']);
        const [, kind] = PROPERTY_IDS[name] ?? [0, 'string'];
        const value = kind === 'string' ? 'x' : kind === 'binary' ? Buffer.alloc(1) : 1;
        entries.push(encodeProperty(name, value), encodeProperty(name, value));
      } else if (chosen === 'property-unknown') {
        const id = rng.pick(UNKNOWN_PROPERTY_IDS);
        entries.splice(
          rng.int(entries.length + 1),
          0,
          Buffer.concat([Buffer.from([id]), rng.bytes(rng.int(5))]),
        );
      } else if (chosen === 'property-misplaced') {
        const name = rng.pick(SERVER_PROPERTIES);
        const [, kind] = PROPERTY_IDS[name] ?? [0, 'byte'];
        entries.push(encodeProperty(name, kind === 'string' ? 'x' : 1));
      } else if (chosen === 'property-bad-utf8') {
        const bad = Buffer.concat([Buffer.from('p'), Buffer.from(rng.pick(BAD_UTF8))]);
        const name = rng.pick(['reasonString', 'contentType', 'userProperties']);
        entries.push(
          name === 'userProperties'
            ? Buffer.concat([
                Buffer.from([0x26]),
                lengthPrefixed(Buffer.from('k')),
                lengthPrefixed(bad),
              ])
            : Buffer.concat([Buffer.from([PROPERTY_IDS[name]?.[0] ?? 0x1f]), lengthPrefixed(bad)]),
        );
      } else {
        // the last property cut short while the Property Length still counts it whole
        const name = rng.pick([
          'topicAlias',
          'messageExpiryInterval',
          'reasonString',
          'receiveMaximum',
          'userProperties',
        ]);
        const whole = encodeProperty(
          name,
          name === 'userProperties' ? ['k', 'v'] : name === 'reasonString' ? 'abc' : 7,
        );
        const complete = entries.reduce((sum, entry) => sum + entry.length, 0);
        entries.push(whole.subarray(0, rng.range(1, whole.length - 1)));
        declared = complete + whole.length;
      }
      const block = Buffer.concat(entries);
      const spoiled = withProperties(generated.packet, bytes, block, declared ?? block.length);
      if (spoiled === undefined) return intact(`${cmd}/v${version}/none`, bytes);
      // cut short: what follows the packet is read as the rest of the property, or the packet
      // ends first; a malformed packet either way, but which one depends on what comes next
      return intact(label, spoiled, chosen !== 'property-cut-short');
    }
    case 'random-body': {
      const randomType = rng.range(1, 15);
      const flags = requiredFlags(randomType) ?? rng.pick([0, 2, 4, 8, 9, 11]);
      return intact(label, frame((randomType << 4) | flags, rng.bytes(rng.range(0, 200))));
    }
    case 'reserved-type':
      // type 0 is reserved; type 15 (AUTH) is not part of 3.1/3.1.1
      return version !== 5 && rng.chance(0.5)
        ? intact(label, frame(0xf0, body), true)
        : intact(label, frame(rng.int(16), body), true);
  }
}

// ---------------------------------------------------------------------------------------------
// Cases

export type CaseMode = 'connected' | 'first-packet' | 'random-bytes';
export type Ending = 'destroy' | 'end' | 'disconnect';

export interface FuzzCase {
  seed: number;
  index: number;
  version: Version;
  mode: CaseMode;
  /** connected: a valid CONNECT, answered before the steps are sent. */
  connect?: Buffer;
  steps: Step[];
  /** The server must have closed once the steps were read. */
  mustClose: boolean;
  /** The server's view of packet boundaries is still ours after the steps (a PINGREQ is answered). */
  framingIntact: boolean;
  ending: Ending;
}

function withChunks(rng: Rng, step: Step): Step {
  if (step.bytes.length < 2 || !rng.chance(0.25)) return step;
  const chunks: number[] = [];
  let left = step.bytes.length;
  while (left > 0) {
    const size = rng.chance(0.3) ? 1 : rng.range(1, left);
    chunks.push(Math.min(size, left));
    left -= size;
  }
  return { ...step, chunks };
}

/** Case `index` of a run seeded with `seed`. */
export function caseFor(seed: number, index: number, options: MutateOptions): FuzzCase {
  const rng = new Rng(caseSeed(seed, index));
  const version = rng.pick([3, 4, 5] as const);
  const roll = rng.float();
  const mode: CaseMode = roll < 0.6 ? 'connected' : roll < 0.92 ? 'first-packet' : 'random-bytes';
  const steps: Step[] = [];
  let connectBytes: Buffer | undefined;
  if (mode === 'connected') {
    connectBytes = encode(connectPacket(rng, version, { prelude: true }).packet, version);
    const count = rng.range(1, 8);
    for (let i = 0; i < count; i++) {
      const cmd = rng.pick(CLIENT_TYPES);
      // mostly valid packets first, so that the state machine gets somewhere
      const mutation = rng.chance(0.35) && i < count - 1 ? 'none' : undefined;
      steps.push(withChunks(rng, mutatedPacket(rng, version, cmd, options, mutation)));
    }
  } else if (mode === 'first-packet') {
    const cmd = rng.chance(0.6) ? 'connect' : rng.pick(PACKET_TYPES);
    steps.push(withChunks(rng, mutatedPacket(rng, version, cmd, options)));
    if (rng.chance(0.3))
      steps.push(withChunks(rng, mutatedPacket(rng, version, rng.pick(CLIENT_TYPES), options)));
  } else {
    steps.push(withChunks(rng, broken('random-bytes', rng.bytes(rng.range(1, 300)))));
  }
  // The server must close at the first step that requires it if every step before it was framed
  // as the server reads it (a broken one may swallow what follows into its body).
  let mustClose = false;
  let framingIntact = true;
  for (const step of steps) {
    if (!framingIntact) break;
    if (step.mustClose) mustClose = true;
    // before CONNECT, any other complete packet closes the connection [MQTT-3.1.0-1]
    if (mode === 'first-packet' && step === steps[0] && step.framing === 'intact') {
      if ((step.bytes[0] ?? 0) >> 4 !== 1) mustClose = true;
    }
    if (step.framing === 'broken') framingIntact = false;
  }
  return {
    seed,
    index,
    version,
    mode,
    ...(connectBytes ? { connect: connectBytes } : {}),
    steps,
    mustClose,
    framingIntact,
    ending: rng.pick(['destroy', 'end', 'disconnect'] as const),
  };
}

/** One line per step, for a failure report. */
export function describeCase(fuzzCase: FuzzCase): string {
  const head = `case ${fuzzCase.index} (seed ${fuzzCase.seed}): ${fuzzCase.mode}, v${fuzzCase.version}, ${fuzzCase.ending}`;
  const lines = fuzzCase.steps.map((step) => {
    const hex = step.bytes.subarray(0, 96).toString('hex');
    const more = step.bytes.length > 96 ? `… (${step.bytes.length} bytes)` : '';
    return `  ${step.label} [${step.framing}${step.mustClose ? ', must close' : ''}${step.chunks ? `, ${step.chunks.length} writes` : ''}] ${hex}${more}`;
  });
  return [
    head,
    ...(fuzzCase.connect ? [`  connect ${fuzzCase.connect.toString('hex')}`] : []),
    ...lines,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Playing cases

export interface CaseOutcome {
  /** Who ended the connection. */
  closedBy: 'server' | 'client';
  /** What the server did wrong, if anything. */
  problem?: string;
}

/** A socket and what the server sent on it. */
class FuzzSocket {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  isClosed = false;
  readonly packets: Packet[] = [];
  parseError: string | undefined;
  #parser: ReturnType<typeof mqttPacket.parser> | undefined;
  #waiters = new Set<() => void>();

  constructor(socket: Socket, parseVersion: Version | undefined) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.isClosed = true;
        resolve();
        this.#notify();
      });
    });
    if (parseVersion !== undefined) {
      const parser = mqttPacket.parser({ protocolVersion: parseVersion });
      parser.on('packet', (packet: Packet) => {
        this.packets.push(packet);
        this.#notify();
      });
      parser.on('error', (error: Error) => {
        this.parseError ??= error.message;
      });
      this.#parser = parser;
    }
    socket.on('data', (chunk: Buffer) => {
      this.#parser?.parse(chunk);
    });
  }

  #notify(): void {
    for (const waiter of this.#waiters) waiter();
  }

  /** Resolves once `check` is true (checked on every packet and at close), or after `timeoutMs`. */
  async until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (check()) return true;
    return new Promise<boolean>((resolve) => {
      const done = (result: boolean): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve(result);
      };
      const waiter = (): void => {
        if (check()) done(true);
      };
      const timer = setTimeout(() => {
        done(check());
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  async write(bytes: Buffer, chunks: number[] | undefined): Promise<void> {
    if (this.isClosed) return;
    if (!chunks) {
      this.socket.write(bytes);
      return;
    }
    let offset = 0;
    for (const size of chunks) {
      if (this.socket.destroyed) return;
      this.socket.write(bytes.subarray(offset, offset + size));
      offset += size;
      // the next piece in a later TCP segment, most of the time
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  count(cmd: Packet['cmd']): number {
    return this.packets.filter((packet) => packet.cmd === cmd).length;
  }
}

async function open(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/**
 * Plays one case on a new connection. Checks: a valid CONNECT is answered with CONNACK 0; the
 * server closes a connection it must close; a connection whose framing is intact still answers
 * PINGREQ; the server closes its side once the client has ended its own.
 */
export async function playCase(
  port: number,
  fuzzCase: FuzzCase,
  timeoutMs: number,
): Promise<CaseOutcome> {
  const connected = fuzzCase.mode === 'connected';
  const client = new FuzzSocket(await open(port), connected ? fuzzCase.version : undefined);
  const problem = (text: string): CaseOutcome => {
    client.socket.destroy();
    return { closedBy: client.isClosed ? 'server' : 'client', problem: text };
  };
  if (connected && fuzzCase.connect) {
    client.socket.write(fuzzCase.connect);
    await client.until(() => client.isClosed || client.count('connack') > 0, timeoutMs);
    const connack = client.packets.find((packet) => packet.cmd === 'connack');
    if (!connack) {
      return problem(
        client.isClosed
          ? 'valid CONNECT: closed without CONNACK'
          : 'valid CONNECT: no CONNACK in time',
      );
    }
    const code = connack.reasonCode ?? connack.returnCode ?? 0;
    if (code !== 0) return problem(`valid CONNECT refused with 0x${code.toString(16)}`);
  }
  for (const step of fuzzCase.steps) await client.write(step.bytes, step.chunks);

  if (fuzzCase.mustClose) {
    if (!(await client.until(() => client.isClosed, timeoutMs))) {
      return problem(`still open ${timeoutMs} ms after input it must close on`);
    }
  } else if (connected && fuzzCase.framingIntact && !client.isClosed) {
    const before = client.count('pingresp');
    client.socket.write(encode({ cmd: 'pingreq' }, fuzzCase.version));
    const answered = await client.until(
      () => client.isClosed || client.count('pingresp') > before,
      timeoutMs,
    );
    if (!answered) return problem(`open but no PINGRESP within ${timeoutMs} ms`);
  }
  if (client.parseError !== undefined && !client.isClosed) {
    return problem(`server sent bytes mqtt-packet cannot parse: ${client.parseError}`);
  }
  if (client.isClosed) return { closedBy: 'server' };

  switch (fuzzCase.ending) {
    case 'destroy':
      client.socket.destroy();
      return { closedBy: 'client' };
    case 'disconnect':
      client.socket.write(encode({ cmd: 'disconnect' }, fuzzCase.version));
      client.socket.end();
      break;
    case 'end':
      client.socket.end();
      break;
  }
  if (!(await client.until(() => client.isClosed, timeoutMs))) {
    return problem(`server kept its side open ${timeoutMs} ms after the client's FIN`);
  }
  return { closedBy: 'client' };
}

export interface FuzzOptions extends MutateOptions {
  port: number;
  seed: number;
  /** First case index (default 0). */
  from?: number;
  /** Cases to play; or play until `deadline` (Date.now() value). */
  iterations?: number;
  deadline?: number;
  /** Connections at once. */
  concurrency: number;
  /** How long the server may take to do what it must (CONNACK, close, PINGRESP). */
  timeoutMs: number;
  /** Called after every case (progress). */
  onCase?: (fuzzCase: FuzzCase, outcome: CaseOutcome) => void;
}

export interface FuzzReport {
  seed: number;
  iterations: number;
  closedByServer: number;
  closedByClient: number;
  /** Cases the server handled wrongly, described. */
  problems: string[];
  /** Cases played per mutation label prefix (cmd/version/mutation). */
  labels: Map<string, number>;
  elapsedMs: number;
}

/** Plays cases `from`, `from + 1`, … with `concurrency` connections at once. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const report: FuzzReport = {
    seed: options.seed,
    iterations: 0,
    closedByServer: 0,
    closedByClient: 0,
    problems: [],
    labels: new Map(),
    elapsedMs: 0,
  };
  let next = options.from ?? 0;
  const end = options.iterations !== undefined ? next + options.iterations : Infinity;
  const more = (): boolean =>
    next < end && (options.deadline === undefined || Date.now() < options.deadline);
  const worker = async (): Promise<void> => {
    while (more()) {
      const index = next++;
      let fuzzCase: FuzzCase;
      try {
        fuzzCase = caseFor(options.seed, index, options);
      } catch (error) {
        report.problems.push(
          `case ${index} (seed ${options.seed}) not generated: ${String(error)}`,
        );
        continue;
      }
      let outcome: CaseOutcome;
      try {
        outcome = await playCase(options.port, fuzzCase, options.timeoutMs);
      } catch (error) {
        outcome = { closedBy: 'client', problem: `could not play: ${String(error)}` };
      }
      report.iterations++;
      if (outcome.closedBy === 'server') report.closedByServer++;
      else report.closedByClient++;
      for (const step of fuzzCase.steps) {
        report.labels.set(step.label, (report.labels.get(step.label) ?? 0) + 1);
      }
      if (outcome.problem !== undefined) {
        report.problems.push(`${outcome.problem}\n${describeCase(fuzzCase)}`);
      }
      options.onCase?.(fuzzCase, outcome);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, () => worker()));
  report.elapsedMs = Date.now() - started;
  return report;
}

// ---------------------------------------------------------------------------------------------
// Well-behaved clients

/**
 * Well-behaved clients publishing QoS 1 in a loop, each subscribed to every client's topic, so
 * that each client should receive every message any of them got a PUBACK for.
 */
export class SteadyTraffic {
  readonly #clients: MqttClient[];
  readonly #topics: string[];
  /** Per publisher: the sequence numbers acknowledged. */
  readonly acked: number[][];
  /** Per subscriber, per publisher: sequence numbers received. */
  readonly received: Array<Array<Set<number>>>;
  readonly errors: string[] = [];
  #running = false;
  #loops: Array<Promise<void>> = [];

  constructor(clients: MqttClient[], topics: string[]) {
    this.#clients = clients;
    this.#topics = topics;
    this.acked = clients.map(() => []);
    this.received = clients.map(() => clients.map(() => new Set<number>()));
    clients.forEach((client, subscriber) => {
      client.on('message', (topic, payload) => {
        const publisher = topics.indexOf(topic);
        const sequence = Number(payload.toString().split(':')[1]);
        if (publisher >= 0) this.received[subscriber]?.[publisher]?.add(sequence);
      });
    });
  }

  async start(): Promise<void> {
    await Promise.all(
      this.#clients.map((client) => client.subscribeAsync(this.#topics, { qos: 1 })),
    );
    this.#running = true;
    this.#loops = this.#clients.map(async (client, publisher) => {
      const topic = this.#topics[publisher] ?? '';
      for (let sequence = 0; this.#running; sequence++) {
        try {
          await client.publishAsync(topic, `${publisher}:${sequence}`, { qos: 1 });
          this.acked[publisher]?.push(sequence);
        } catch (error) {
          this.errors.push(`client ${publisher} publish ${sequence}: ${String(error)}`);
          if (!client.connected) return;
        }
      }
    });
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  /** Messages acknowledged in all. */
  get totalAcked(): number {
    return this.acked.reduce((sum, list) => sum + list.length, 0);
  }

  /** Acknowledged messages some subscriber has not received: "subscriber<-publisher:seq". */
  missing(): string[] {
    const missing: string[] = [];
    this.received.forEach((bySubscriber, subscriber) => {
      this.acked.forEach((sequences, publisher) => {
        for (const sequence of sequences) {
          if (!bySubscriber[publisher]?.has(sequence)) {
            missing.push(`${subscriber}<-${publisher}:${sequence}`);
          }
        }
      });
    });
    return missing;
  }
}

// ---------------------------------------------------------------------------------------------
// Memory of the bridge process

/** The inspector's address a process started with --inspect=127.0.0.1:0 printed on stderr. */
export function inspectorUrl(stderr: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1];
}

/** Runs a full garbage collection in the process behind the inspector at `url`. */
export async function collectGarbage(url: string, timeoutMs = 30_000): Promise<void> {
  const socket = new WebSocket(url);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error('inspector: no answer to HeapProfiler.collectGarbage'));
      }, timeoutMs);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('open', () => {
        socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
      });
      socket.on('message', (data: Buffer) => {
        const message = JSON.parse(data.toString()) as { id?: number; error?: unknown };
        if (message.id !== 1) return;
        clearTimeout(timer);
        if (message.error !== undefined) reject(new Error(JSON.stringify(message.error)));
        else resolve();
      });
    });
  } finally {
    socket.close();
  }
}

import type { IConnectPacket, Packet } from 'mqtt-packet';
import { ReasonCode } from './reason-codes.js';

export interface PacketProblem {
  reasonCode: number;
  reason: string;
}

const ACK_PROPERTIES = ['reasonString', 'userProperties'];
const MESSAGE_PROPERTIES = [
  'payloadFormatIndicator',
  'messageExpiryInterval',
  'contentType',
  'responseTopic',
  'correlationData',
  'userProperties',
];

/** The properties each packet from a client may carry (MQTT 5.0 §2.2.2.2); others are malformed. */
const ALLOWED_PROPERTIES: Partial<Record<Packet['cmd'], ReadonlySet<string>>> = {
  connect: new Set([
    'sessionExpiryInterval',
    'receiveMaximum',
    'maximumPacketSize',
    'topicAliasMaximum',
    'requestResponseInformation',
    'requestProblemInformation',
    'userProperties',
    'authenticationMethod',
    'authenticationData',
  ]),
  // Subscription Identifier is refused separately, with a clearer reason
  publish: new Set([...MESSAGE_PROPERTIES, 'topicAlias', 'subscriptionIdentifier']),
  puback: new Set(ACK_PROPERTIES),
  pubrec: new Set(ACK_PROPERTIES),
  pubrel: new Set(ACK_PROPERTIES),
  pubcomp: new Set(ACK_PROPERTIES),
  subscribe: new Set(['subscriptionIdentifier', 'userProperties']),
  unsubscribe: new Set(['userProperties']),
  disconnect: new Set([
    'sessionExpiryInterval',
    'reasonString',
    'userProperties',
    'serverReference',
  ]),
  auth: new Set(['authenticationMethod', 'authenticationData', 'reasonString', 'userProperties']),
};
const WILL_PROPERTIES: ReadonlySet<string> = new Set([...MESSAGE_PROPERTIES, 'willDelayInterval']);

/** MQTT 5 properties that may appear more than once in a packet from a client. */
const REPEATABLE = new Set(['userProperties']);

/**
 * Checks mqtt-packet leaves to the receiver: a property repeated where the
 * spec allows it once, or cut short (mqtt-packet then yields null), a packet
 * identifier cut short, empty SUBSCRIBE/UNSUBSCRIBE, packet id 0, DUP on QoS 0,
 * and server-only properties sent by a client. Returns the first problem found.
 */
export function packetProblem(packet: Packet): PacketProblem | undefined {
  // mqtt-packet reads a packet identifier cut short as -1 (and would write it back as nothing)
  const { messageId } = packet as { messageId?: number };
  if (messageId !== undefined && !(messageId >= 0 && messageId <= 0xffff)) {
    return malformed('packet identifier cut short');
  }
  const properties = 'properties' in packet ? packet.properties : undefined;
  const problem =
    (properties && propertiesProblem(properties, ALLOWED_PROPERTIES[packet.cmd])) ??
    (packet.cmd === 'connect' && packet.will?.properties
      ? propertiesProblem(packet.will.properties, WILL_PROPERTIES)
      : undefined);
  if (problem) return problem;
  switch (packet.cmd) {
    case 'publish':
      if (hasWildcard(packet.properties?.responseTopic)) return responseTopicWildcard();
      // [MQTT-3.3.1-2] DUP must be 0 for QoS 0
      if (packet.qos === 0 && packet.dup) return malformed('DUP set on a QoS 0 PUBLISH');
      if (packet.qos > 0 && !packet.messageId) return protocol('packet identifier 0'); // [MQTT-2.2.1-3]
      // [MQTT-3.3.4-6] only the server sends Subscription Identifiers in PUBLISH
      if (packet.properties?.subscriptionIdentifier !== undefined) {
        return protocol('Subscription Identifier in a PUBLISH from a client');
      }
      return undefined;
    case 'subscribe':
      // [MQTT-3.8.3-2] at least one topic filter
      if (packet.subscriptions.length === 0) return protocol('SUBSCRIBE without topic filters');
      return packet.messageId ? undefined : protocol('packet identifier 0');
    case 'unsubscribe':
      // [MQTT-3.10.3-2] at least one topic filter
      if (packet.unsubscriptions.length === 0) return protocol('UNSUBSCRIBE without topic filters');
      return packet.messageId ? undefined : protocol('packet identifier 0');
    case 'connect':
      return connectProblem(packet);
    default:
      return undefined;
  }
}

function connectProblem(packet: IConnectPacket): PacketProblem | undefined {
  if (packet.will && (packet.will.qos ?? 0) > 2) return malformed('will QoS 3'); // [MQTT-3.1.2-14]
  if (hasWildcard(packet.will?.properties?.responseTopic)) return responseTopicWildcard();
  // [MQTT-3.1.2-22] (3.1.1) a password needs a user name; MQTT 5 allows one alone
  if (
    packet.protocolVersion !== 5 &&
    packet.password !== undefined &&
    packet.username === undefined
  ) {
    return protocol('password without user name');
  }
  return undefined;
}

/** [MQTT-3.3.2-14] (5.0) a Response Topic is a topic name: no wildcards. */
function hasWildcard(topic: string | undefined): boolean {
  return topic !== undefined && (topic.includes('+') || topic.includes('#'));
}

const responseTopicWildcard = (): PacketProblem => protocol('wildcard in Response Topic');

function propertiesProblem(
  properties: object,
  allowed: ReadonlySet<string> | undefined,
): PacketProblem | undefined {
  for (const [name, value] of Object.entries(properties)) {
    if (value !== undefined && allowed && !allowed.has(name)) {
      return malformed(`property ${name} is not allowed in this packet`);
    }
    if (Array.isArray(value) && !REPEATABLE.has(name)) {
      return protocol(`property ${name} more than once`);
    }
    if (!wellFormed(value)) return malformed(`property ${name} cut short`);
  }
  return undefined;
}

function wellFormed(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (Array.isArray(value)) return value.every(wellFormed);
  if (typeof value === 'object' && !Buffer.isBuffer(value)) {
    return Object.entries(value).every(([key, item]) => key !== 'null' && wellFormed(item));
  }
  return true;
}

const malformed = (reason: string): PacketProblem => ({
  reasonCode: ReasonCode.MalformedPacket,
  reason,
});
const protocol = (reason: string): PacketProblem => ({
  reasonCode: ReasonCode.ProtocolError,
  reason,
});

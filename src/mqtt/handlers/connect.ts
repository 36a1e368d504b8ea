import { randomBytes } from 'node:crypto';
import type { IConnackPacket, IConnectPacket } from 'mqtt-packet';
import type { Connection, ProtocolVersion } from '../connection.js';
import { ConnackReturnCode, ReasonCode } from '../reason-codes.js';
import { NEVER_EXPIRES } from '../session.js';
import { topicNameProblem } from '../topic-name.js';

/** MQTT 3.1 limits client ids to 23 characters. */
const MQTT_3_1_MAX_CLIENT_ID = 23;

/** How a CONNECT is refused; without a v3 code, a 3.1/3.1.1 client is just disconnected. */
type Refusal = { v3: number | undefined; v5: number; reason: string };

/** CONNECT, as a list of named steps; the first refusal ends it with a CONNACK. */
export function handleConnect(connection: Connection, packet: IConnectPacket): void {
  const version = packet.protocolVersion ?? 4;
  connection.protocolVersion = version;

  const refusal =
    checkProtocolName(packet, version) ?? checkWill(packet) ?? checkClientId(packet, version);
  if (refusal) {
    refuse(connection, refusal);
    return;
  }

  const properties = packet.properties ?? {};
  if (properties.authenticationMethod !== undefined) {
    // [MQTT-4.12.0-1] no enhanced authentication method is supported
    refuse(connection, {
      v3: undefined,
      v5: ReasonCode.BadAuthenticationMethod,
      reason: `authentication method "${properties.authenticationMethod}" is not supported`,
    });
    return;
  }
  if (properties.receiveMaximum === 0 || properties.maximumPacketSize === 0) {
    // [MQTT-3.1.2-...] Receive Maximum and Maximum Packet Size of 0 are protocol errors
    refuse(connection, {
      v3: undefined,
      v5: ReasonCode.ProtocolError,
      reason: 'zero limit in CONNECT',
    });
    return;
  }
  connection.receiveMaximum = properties.receiveMaximum ?? 65_535;
  connection.maximumPacketSize = properties.maximumPacketSize ?? Number.POSITIVE_INFINITY;
  connection.topicAliasMaximum = properties.topicAliasMaximum ?? 0;
  connection.problemInformation = properties.requestProblemInformation ?? true;

  const assigned = packet.clientId === '' ? `auto-${randomBytes(8).toString('hex')}` : undefined;
  connection.clientId = assigned ?? packet.clientId;
  connection.username = packet.username;
  connection.will = packet.will;
  const cleanStart = packet.clean ?? true;
  const requestedExpiry = sessionExpiryOf(packet, version, cleanStart);
  const expiry = connection.limitSessionExpiry(requestedExpiry);
  const sessionPresent = connection.broker.register(connection, cleanStart, expiry);

  const keepAlive = packet.keepalive ?? 0;
  const { maxKeepAlive } = connection.options;
  // [MQTT-3.2.2-21] a Server Keep Alive replaces the client's value
  const serverKeepAlive =
    version === 5 && maxKeepAlive > 0 && (keepAlive === 0 || keepAlive > maxKeepAlive)
      ? maxKeepAlive
      : undefined;
  const connack: IConnackPacket = { cmd: 'connack', sessionPresent };
  if (version === 5) {
    connack.reasonCode = ReasonCode.Success;
    connack.properties = {
      receiveMaximum: connection.options.receiveMaximum,
      topicAliasMaximum: connection.options.topicAliasMaximum,
      maximumPacketSize: connection.options.maxPacketSize,
      ...(serverKeepAlive !== undefined ? { serverKeepAlive } : {}),
      // [MQTT-3.2.2-...] the client is told when it gets less than it asked for
      ...(expiry !== requestedExpiry ? { sessionExpiryInterval: expiry } : {}),
      ...responseInformation(connection, properties.requestResponseInformation === true),
      // [MQTT-3.2.2-16] the server tells the client the id it assigned
      ...(assigned !== undefined ? { assignedClientIdentifier: assigned } : {}),
    };
  } else {
    connack.returnCode = ConnackReturnCode.Accepted;
  }
  connection.send(connack);
  connection.markConnected(serverKeepAlive ?? keepAlive);
  // [MQTT-4.4.0-1] unacknowledged messages are sent again, then the queue
  connection.session.attach(connection);
  connection.log.debug({ clientId: connection.clientId, version, sessionPresent }, 'connected');
}

/**
 * [MQTT-3.2.2-...] Response Information, only when requested: the basis of
 * response topics this client may use (the prefix + its client id).
 */
function responseInformation(
  connection: Connection,
  requested: boolean,
): { responseInformation?: string } {
  const prefix = connection.options.responseTopicPrefix;
  return requested && prefix !== ''
    ? { responseInformation: `${prefix}${connection.clientId}` }
    : {};
}

/**
 * Seconds the session outlives the connection: MQTT 5's Session Expiry
 * Interval (default 0); on 3.1/3.1.1, for ever unless Clean Session is set.
 */
function sessionExpiryOf(packet: IConnectPacket, version: ProtocolVersion, clean: boolean): number {
  if (version === 5) return packet.properties?.sessionExpiryInterval ?? 0;
  return clean ? 0 : NEVER_EXPIRES;
}

/**
 * MQTT 3.1 is "MQIsdp" level 3; 3.1.1 and 5.0 are "MQTT" levels 4 and 5. A
 * mismatch is refused as an unsupported version, as Mosquitto does [MQTT-3.1.2-1, 3.1.2-2].
 */
function checkProtocolName(packet: IConnectPacket, version: ProtocolVersion): Refusal | undefined {
  if ((packet.protocolId === 'MQIsdp') === (version === 3)) return undefined;
  return {
    v3: ConnackReturnCode.UnacceptableProtocolVersion,
    v5: ReasonCode.UnsupportedProtocolVersion,
    reason: `protocol name "${packet.protocolId}" does not go with protocol level ${version}`,
  };
}

function checkWill(packet: IConnectPacket): Refusal | undefined {
  if (!packet.will) return undefined;
  const problem = topicNameProblem(packet.will.topic);
  if (problem === undefined) return undefined;
  // 3.1.1 has no return code for a bad will topic: the connection is closed [MQTT-4.8.0-1]
  return { v3: undefined, v5: ReasonCode.TopicNameInvalid, reason: `will: ${problem}` };
}

function checkClientId(packet: IConnectPacket, version: ProtocolVersion): Refusal | undefined {
  const id = packet.clientId;
  if (version === 3 && (id.length === 0 || id.length > MQTT_3_1_MAX_CLIENT_ID)) {
    return {
      v3: ConnackReturnCode.IdentifierRejected,
      v5: ReasonCode.ClientIdentifierNotValid,
      reason: 'MQTT 3.1 client ids have 1 to 23 characters',
    };
  }
  if (version === 4 && id.length === 0 && packet.clean === false) {
    // [MQTT-3.1.3-8] a zero-byte client id requires CleanSession=1
    return {
      v3: ConnackReturnCode.IdentifierRejected,
      v5: ReasonCode.ClientIdentifierNotValid,
      reason: 'an empty client id needs a clean session',
    };
  }
  return undefined;
}

/** [MQTT-3.2.2-5] a refused CONNECT gets a CONNACK with the reason, then the connection closes. */
function refuse(connection: Connection, refusal: Refusal): void {
  const v5 = connection.protocolVersion === 5;
  if (!v5 && refusal.v3 === undefined) {
    connection.close(refusal.reason);
    return;
  }
  connection.send({
    cmd: 'connack',
    sessionPresent: false,
    ...(v5
      ? { reasonCode: refusal.v5, properties: { reasonString: refusal.reason } }
      : { returnCode: refusal.v3 }),
  });
  connection.log.info({ clientId: connection.clientId, reason: refusal.reason }, 'CONNECT refused');
  connection.close(refusal.reason);
}

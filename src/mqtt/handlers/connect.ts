import { randomBytes } from 'node:crypto';
import type { IConnackPacket, IConnectPacket } from 'mqtt-packet';
import { LARGEST_PACKET, type Connection, type ProtocolVersion } from '../connection.js';
import type { AdmissionLimit } from '../connection-admission.js';
import { anonymousAllowed } from '../../auth/anonymous-access.js';
import type { Principal } from '../../auth/authenticator.js';
import { unproved, type Identity } from '../../auth/identity.js';
import { ALLOW_ALL } from '../../auth/permissions.js';
import { ConnackReturnCode, ReasonCode } from '../reason-codes.js';
import { NEVER_EXPIRES } from '../session.js';
import { topicNameProblem } from '../topic-name.js';
import { topicOverLimit } from '../topic-limits.js';
import { isSysTopic } from '../../rules/mqtt-topic-name.js';
import { startEnhancedAuthentication } from './auth.js';
import { authenticationRefusal, refuse, type Refusal } from './connack-refusal.js';

/** MQTT 3.1 limits client ids to 23 characters. */
const MQTT_3_1_MAX_CLIENT_ID = 23;

/** CONNECT, as a list of named steps; the first refusal ends it with a CONNACK. */
export function handleConnect(connection: Connection, packet: IConnectPacket): void {
  const version = packet.protocolVersion ?? 4;
  connection.protocolVersion = version;

  const properties = packet.properties ?? {};
  const refusal =
    checkAdmission(connection) ??
    checkProtocolName(packet, version) ??
    checkWill(connection, packet) ??
    checkClientId(packet, version) ??
    checkLimits(properties) ??
    checkRedirect(connection);
  if (refusal) {
    refuse(connection, refusal);
    return;
  }
  // [MQTT-3.3.4-7] never more than the client's Receive Maximum; and the server's own cap, so a
  // client that never acknowledges holds few messages (3.1.1 clients have no Receive Maximum)
  connection.receiveMaximum = Math.min(
    properties.receiveMaximum ?? 65_535,
    connection.options.maxInflight,
  );
  connection.maximumPacketSize = properties.maximumPacketSize ?? LARGEST_PACKET;
  connection.topicAliasMaximum = properties.topicAliasMaximum ?? 0;
  connection.problemInformation = properties.requestProblemInformation ?? true;
  const assigned = packet.clientId === '' ? `auto-${randomBytes(8).toString('hex')}` : undefined;
  connection.clientId = assigned ?? packet.clientId;
  connection.username = packet.username;
  connection.will = packet.will;
  const accepted: Accepted = { packet, assigned, extraProperties: {} };

  const { authenticator } = connection.options;
  if (properties.authenticationMethod !== undefined) {
    startEnhancedAuthentication(
      connection,
      properties.authenticationMethod,
      properties.authenticationData,
      (principal, extraProperties) => {
        accept(connection, principal, { ...accepted, extraProperties });
      },
    );
    return;
  }
  if (connection.certificateName !== undefined) {
    acceptCertificate(connection, connection.certificateName, accepted);
    return;
  }
  if (!authenticator.enabled) {
    if (anonymousAllowed(connection.options.anonymousAccess, connection.remoteAddress)) {
      accept(connection, ALLOW_EVERYTHING(connection), accepted);
    } else {
      // closed by default: without a users file only this machine's clients get in
      refuse(connection, authenticationRefusal('not-authorized'));
    }
    return;
  }
  connection.startAuthenticating({ hold: true });
  // checkCredentials: failures are slowed per remote address
  const check = () =>
    authenticator.authenticatePassword(packet.username, packet.password, connection.clientId);
  connection.checkCredentials(check).then(
    (result) => {
      if (result === undefined || connection.status !== 'authenticating') return; // closed meanwhile
      if (result.ok) {
        accept(connection, result.principal, accepted);
        return;
      }
      if (result.problem !== undefined) {
        connection.log.info(
          { clientId: connection.clientId, problem: result.problem },
          'credentials refused',
        );
      }
      refuse(connection, authenticationRefusal(result.reason));
    },
    (error: unknown) => {
      connection.log.error({ err: error }, 'authentication failed');
      refuse(connection, {
        v3: ConnackReturnCode.ServerUnavailable,
        v5: ReasonCode.UnspecifiedError,
        reason: 'authentication failed',
      });
    },
  );
}

/**
 * The TLS listener verified the client's certificate (`tls.identity`): it names the user, no
 * password is needed (one sent is ignored), and a user name sent must be that name. Such a
 * client is authenticated, so it is accepted without a users file too, on any listener.
 */
function acceptCertificate(connection: Connection, name: string, accepted: Accepted): void {
  const { username } = accepted.packet;
  if (username !== undefined && username !== name) {
    connection.log.info(
      { clientId: connection.clientId, username, certificate: name },
      "user name is not the certificate's",
    );
    refuse(connection, authenticationRefusal('bad-credentials'));
    return;
  }
  const identity: Identity = { username: name, proof: 'certificate' };
  const result = connection.options.authenticator.authorize(identity, connection.clientId);
  if (result.ok) accept(connection, result.principal, accepted);
  else refuse(connection, authenticationRefusal(result.reason));
}

/** What CONNECT asked for, carried to where it is accepted. */
interface Accepted {
  packet: IConnectPacket;
  /** The client id the server assigned, when the client sent none. */
  assigned: string | undefined;
  /** CONNACK properties from the authentication (method, data). */
  extraProperties: IConnackPacket['properties'];
}

const ALLOW_EVERYTHING = (connection: Connection): Principal => ({
  identity: unproved(connection.username),
  clientId: connection.clientId,
  permissions: ALLOW_ALL,
});

/** CONNECT is authenticated: the session is set up and CONNACK sent. */
function accept(connection: Connection, principal: Principal, accepted: Accepted): void {
  const { packet, assigned } = accepted;
  const will = packet.will;
  if (will && (!principal.permissions.canPublish(will.topic) || isSysTopic(will.topic))) {
    // As Mosquitto: a will the client may not publish (never to $SYS/) refuses the connection.
    refuse(connection, {
      v3: ConnackReturnCode.NotAuthorized,
      v5: ReasonCode.NotAuthorized,
      reason: `not authorized to publish the will to "${will.topic}"`,
    });
    return;
  }
  const identityRefusal = checkIdentity(connection, principal, assigned !== undefined);
  if (identityRefusal) {
    refuse(connection, identityRefusal);
    return;
  }
  connection.permissions = principal.permissions;
  connection.identity = principal.identity;
  connection.username = principal.identity.username;
  // the session's store makes this bridge its owner first (sessions.store kafka)
  const version = connection.protocolVersion;
  const expiryInterval = connection.limitSessionExpiry(
    sessionExpiryOf(packet, version, packet.clean ?? true),
  );
  const claimed = connection.broker.claim(connection.clientId, {
    identity: principal.identity,
    assignedId: accepted.assigned !== undefined,
    expiryInterval,
  });
  if (claimed === undefined) {
    connectAccepted(connection, principal, accepted);
    return;
  }
  connection.startAuthenticating({ hold: true });
  claimed.then(
    () => {
      if (connection.status !== 'authenticating') return; // closed meanwhile
      connectAccepted(connection, principal, accepted);
    },
    (error: unknown) => {
      connection.log.warn({ err: error, clientId: connection.clientId }, 'session not claimed');
      refuse(connection, {
        v3: ConnackReturnCode.ServerUnavailable,
        v5: ReasonCode.ServerUnavailable,
        reason: 'session store unavailable',
      });
    },
  );
}

/** The session is this bridge's: it is set up (taken over, resumed or new) and CONNACK sent. */
function connectAccepted(connection: Connection, principal: Principal, accepted: Accepted): void {
  const { packet, assigned } = accepted;
  const version = connection.protocolVersion;
  const cleanStart = packet.clean ?? true;
  const requestedExpiry = sessionExpiryOf(packet, version, cleanStart);
  const expiry = connection.limitSessionExpiry(requestedExpiry);
  const sessionPresent = connection.broker.register(
    connection,
    cleanStart,
    expiry,
    assigned !== undefined,
  );

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
      ...responseInformation(connection, packet.properties?.requestResponseInformation === true),
      // [MQTT-3.2.2-16] the server tells the client the id it assigned
      ...(assigned !== undefined ? { assignedClientIdentifier: assigned } : {}),
      ...accepted.extraProperties,
    };
  } else {
    connack.returnCode = ConnackReturnCode.Accepted;
  }
  connection.send(connack);
  connection.markConnected(serverKeepAlive ?? keepAlive);
  // [MQTT-4.4.0-1] unacknowledged messages are sent again, then the queue
  connection.session.attach(connection);
  connection.broker.sessionAttached(connection.session);
  if (connection.broker.log.isLevelEnabled('debug')) {
    connection.log.debug(
      { clientId: connection.clientId, version, sessionPresent, username: connection.username },
      'connected',
    );
  }
  connection.releaseHeld();
}

/**
 * Client ids bound to identities: the id must match the identity's `clientIds` patterns, and a
 * session (kept, or of a connected client) created by another identity may be neither taken
 * over nor ended. Both refused with 0x85 Client Identifier not valid (3.1.1: 0x02).
 */
function checkIdentity(
  connection: Connection,
  principal: Principal,
  assigned: boolean,
): Refusal | undefined {
  const { authenticator } = connection.options;
  if (!authenticator.enabled) return undefined;
  const { identity, clientId } = principal;
  const { username } = identity;
  let reason: string | undefined;
  if (!authenticator.allowsClientId(identity, clientId, assigned)) {
    reason = `client id "${clientId}" is not one this user may use`;
  } else if (connection.broker.ownedByAnother(clientId, username)) {
    reason = `client id "${clientId}" has a session of another user`;
  }
  if (reason === undefined) return undefined;
  return {
    v3: ConnackReturnCode.IdentifierRejected,
    v5: ReasonCode.ClientIdentifierNotValid,
    reason,
  };
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

/** What a client refused by a connection limit is told (3.1/3.1.1: 0x03 Server unavailable). */
const ADMISSION_REFUSALS: Record<AdmissionLimit, { v5: number; reason: string }> = {
  'mqtt.maxConnections': { v5: ReasonCode.ServerBusy, reason: 'too many connections' },
  'mqtt.maxConnectionsPerAddress': {
    v5: ReasonCode.QuotaExceeded,
    reason: 'too many connections from this address',
  },
  'mqtt.maxConnectRate': {
    v5: ReasonCode.ConnectionRateExceeded,
    reason: 'too many new connections from this address',
  },
};

/**
 * A connection limit refused the connection when its socket was accepted: it is told now,
 * before any authentication (a refused flood costs no password checks). Counted and logged
 * when it was refused.
 */
function checkAdmission(connection: Connection): Refusal | undefined {
  if (connection.refusedBy === undefined) return undefined;
  const { v5, reason } = ADMISSION_REFUSALS[connection.refusedBy];
  return { v3: ConnackReturnCode.ServerUnavailable, v5, reason, reported: true };
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

/** [MQTT-3.1.2-...] Receive Maximum and Maximum Packet Size of 0 are protocol errors. */
function checkLimits(properties: NonNullable<IConnectPacket['properties']>): Refusal | undefined {
  if (properties.receiveMaximum !== 0 && properties.maximumPacketSize !== 0) return undefined;
  return { v3: undefined, v5: ReasonCode.ProtocolError, reason: 'zero limit in CONNECT' };
}

/** `mqtt.redirect`: every client is sent elsewhere; 3.1.1 can only be told "unavailable". */
function checkRedirect(connection: Connection): Refusal | undefined {
  const { redirect, serverReference } = connection.options;
  if (redirect === 'none') return undefined;
  return {
    v3: ConnackReturnCode.ServerUnavailable,
    v5: redirect === 'server-moved' ? ReasonCode.ServerMoved : ReasonCode.UseAnotherServer,
    reason: `use ${serverReference}`,
    serverReference,
  };
}

function checkWill(connection: Connection, packet: IConnectPacket): Refusal | undefined {
  if (!packet.will) return undefined;
  const { topic } = packet.will;
  let problem = topicNameProblem(topic);
  const overLimit = problem === undefined ? topicOverLimit(topic, connection.options) : undefined;
  if (overLimit !== undefined) {
    connection.broker.refusals.refuse(
      overLimit,
      { clientId: packet.clientId, topic: topic.slice(0, 200) },
      'will refused',
    );
    problem = `topic beyond ${overLimit}`;
  }
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

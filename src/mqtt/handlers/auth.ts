import type { IAuthPacket, IConnackPacket } from 'mqtt-packet';
import type { Principal } from '../../auth/authenticator.js';
import type { ScramError, ScramServerConversation } from '../../auth/scram-server.js';
import { SCRAM_SHA_256 } from '../../auth/scram-verifier.js';
import type { Connection } from '../connection.js';
import { ConnackReturnCode, ReasonCode } from '../reason-codes.js';
import { authenticationRefusal, refuse } from './connack-refusal.js';

/*
 * MQTT 5 enhanced authentication (§4.12) with SCRAM-SHA-256, as EMQX offers it:
 *
 *   CONNECT  method, data = client-first      →
 *            ←  AUTH 0x18 (continue), data = server-first
 *   AUTH 0x18, data = client-final            →
 *            ←  CONNACK 0x00, data = server-final
 *
 * Re-authentication (§4.12.1) is the same exchange opened by the client with
 * AUTH 0x19 and closed by the server with AUTH 0x00; other packets keep flowing.
 */

/** An exchange waiting for the client's final message. */
export interface AuthExchange {
  conversation: ScramServerConversation;
  /** The client proved who it is: `username` is the name SCRAM authenticated. */
  succeed(username: string, serverFinal: Buffer): void;
  fail(error: ScramError): void;
}

type Accept = (principal: Principal, connackProperties: IConnackPacket['properties']) => void;

/** CONNECT carried an Authentication Method: the exchange starts. */
export function startEnhancedAuthentication(
  connection: Connection,
  method: string,
  data: Buffer | undefined,
  accept: Accept,
): void {
  const { authenticator } = connection.options;
  if (method !== SCRAM_SHA_256 || !authenticator.enabled) {
    // [MQTT-4.12.0-1] an unsupported method gets 0x8C
    refuse(connection, {
      v3: undefined,
      v5: ReasonCode.BadAuthenticationMethod,
      reason: `authentication method "${method}" is not supported`,
    });
    return;
  }
  connection.authMethod = method;
  connection.startAuthenticating({ hold: false });
  begin(connection, data, {
    succeed(username, serverFinal) {
      const result = authenticator.authorize({ username, proof: 'password' }, connection.clientId);
      if (!result.ok) {
        refuse(connection, authenticationRefusal(result.reason));
        return;
      }
      connection.username = username;
      accept(result.principal, { authenticationMethod: method, authenticationData: serverFinal });
    },
    fail(error) {
      refuse(connection, {
        v3: ConnackReturnCode.NotAuthorized,
        v5: error === 'invalid-proof' ? ReasonCode.BadUserNameOrPassword : ReasonCode.NotAuthorized,
        reason: `authentication failed: ${error}`,
      });
    },
  });
}

/** An AUTH packet from the client. */
export function handleAuth(connection: Connection, packet: IAuthPacket): void {
  const method = packet.properties?.authenticationMethod;
  if (connection.authMethod === undefined) {
    // [MQTT-4.12.0-7] no AUTH from a client whose CONNECT had no Authentication Method
    connection.protocolViolation(ReasonCode.ProtocolError, 'AUTH without enhanced authentication');
    return;
  }
  if (method !== connection.authMethod) {
    // [MQTT-4.12.0-5] the same method throughout
    connection.protocolViolation(ReasonCode.ProtocolError, 'AUTH with another method');
    return;
  }
  const data = packet.properties?.authenticationData;
  const exchange = connection.authExchange;
  if (packet.reasonCode === ReasonCode.ContinueAuthentication && exchange) {
    connection.authExchange = undefined;
    const finish = (): { ok: boolean } => {
      const result = exchange.conversation.finish(data ?? Buffer.alloc(0));
      if ('error' in result) exchange.fail(result.error);
      else exchange.succeed(result.username, result.serverFinal);
      return { ok: !('error' in result) };
    };
    if (connection.status === 'authenticating') {
      // at CONNECT: the proof is checked when the address's turn comes (failures are slowed)
      connection.checkCredentials(finish).catch((error: unknown) => {
        connection.log.error({ err: error }, 'authentication failed');
        connection.protocolViolation(ReasonCode.UnspecifiedError, 'authentication failed');
      });
    } else {
      finish();
    }
    return;
  }
  if (
    packet.reasonCode === ReasonCode.ReAuthenticate &&
    !exchange &&
    connection.status === 'connected'
  ) {
    reauthenticate(connection, data);
    return;
  }
  connection.protocolViolation(
    ReasonCode.ProtocolError,
    `unexpected AUTH reason code 0x${packet.reasonCode.toString(16)}`,
  );
}

/**
 * [MQTT-4.12.1-1] Re-authentication: the client must prove the same user
 * name again; its permissions are rebuilt from the (possibly changed) users
 * file. A failure ends the connection with 0x87.
 */
function reauthenticate(connection: Connection, data: Buffer | undefined): void {
  const failed = (reason: string): void => {
    connection.broker.metrics.mqttAuthenticationFailures.inc();
    connection.protocolViolation(ReasonCode.NotAuthorized, `re-authentication failed: ${reason}`);
  };
  const exchange = begin(connection, data, {
    succeed(username, serverFinal) {
      if (username !== connection.username) {
        failed('another user name');
        return;
      }
      const result = connection.options.authenticator.authorize(
        { username, proof: 'password' },
        connection.clientId,
      );
      if (!result.ok) {
        failed(result.reason);
        return;
      }
      connection.permissions = result.principal.permissions;
      connection.session.permissions = result.principal.permissions;
      connection.send({
        cmd: 'auth',
        reasonCode: ReasonCode.Success,
        properties: {
          authenticationMethod: connection.authMethod,
          authenticationData: serverFinal,
        },
      });
    },
    fail(error) {
      // a wrong proof counts against the address, as at CONNECT
      connection.authenticationFailed();
      failed(error);
    },
  });
  if (exchange === undefined) return;
  // A client silent in the middle of re-authentication is cut off like one at CONNECT.
  setTimeout(() => {
    if (connection.authExchange !== exchange || connection.status !== 'connected') return;
    connection.authExchange = undefined;
    failed('not finished in time');
  }, connection.options.connectTimeoutMs).unref();
}

/**
 * Answers the client-first message with AUTH 0x18 and waits for the client-final one; the
 * exchange waiting, or undefined when the client-first message already failed.
 */
function begin(
  connection: Connection,
  data: Buffer | undefined,
  outcome: Pick<AuthExchange, 'succeed' | 'fail'>,
): AuthExchange | undefined {
  const conversation = connection.options.authenticator.scram();
  const started = conversation.start(data ?? Buffer.alloc(0));
  if ('error' in started) {
    outcome.fail(started.error);
    return undefined;
  }
  const exchange = { conversation, ...outcome };
  connection.authExchange = exchange;
  connection.send({
    cmd: 'auth',
    reasonCode: ReasonCode.ContinueAuthentication,
    properties: {
      authenticationMethod: connection.authMethod,
      authenticationData: started.serverFirst,
    },
  });
  return exchange;
}

import type { Packet } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { packetProblem } from '../packet-checks.js';
import { ReasonCode } from '../reason-codes.js';
import { handlePuback, handlePubcomp, handlePubrec } from './acks.js';
import { handleAuth } from './auth.js';
import { handleConnect } from './connect.js';
import { handleDisconnect } from './disconnect.js';
import { handlePingreq } from './pingreq.js';
import { handlePublish } from './publish.js';
import { handlePubrel } from './pubrel.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe.js';

/**
 * Routes one parsed packet to its handler after checking that the packet is
 * allowed in the connection's current state.
 */
export function dispatch(connection: Connection, packet: Packet): void {
  const problem = packetProblem(packet);
  if (problem) {
    if (connection.status === 'awaiting-connect') connection.close(problem.reason);
    else connection.protocolViolation(problem.reasonCode, problem.reason);
    return;
  }
  if (connection.status === 'awaiting-connect') {
    if (packet.cmd === 'connect') {
      handleConnect(connection, packet);
    } else {
      // [MQTT-3.1.0-1] the first packet must be CONNECT
      connection.close(`${packet.cmd} before CONNECT`);
    }
    return;
  }
  if (connection.status === 'authenticating') {
    // [MQTT-3.1.2-30] during an AUTH exchange only AUTH and DISCONNECT
    if (packet.cmd === 'auth') handleAuth(connection, packet);
    else if (packet.cmd === 'disconnect')
      connection.close('client disconnected while authenticating');
    else connection.close(`${packet.cmd} during authentication`);
    return;
  }
  switch (packet.cmd) {
    case 'publish':
      handlePublish(connection, packet);
      return;
    case 'pubrel':
      handlePubrel(connection, packet);
      return;
    case 'pingreq':
      handlePingreq(connection);
      return;
    case 'disconnect':
      handleDisconnect(connection, packet);
      return;
    case 'subscribe':
      handleSubscribe(connection, packet);
      return;
    case 'unsubscribe':
      handleUnsubscribe(connection, packet);
      return;
    case 'puback':
      handlePuback(connection, packet);
      return;
    case 'pubrec':
      handlePubrec(connection, packet);
      return;
    case 'pubcomp':
      handlePubcomp(connection, packet);
      return;
    case 'connect':
      // [MQTT-3.1.0-2] a second CONNECT is a protocol violation
      connection.protocolViolation(ReasonCode.ProtocolError, 'second CONNECT');
      return;
    case 'auth':
      handleAuth(connection, packet);
      return;
    default:
      // CONNACK, SUBACK, UNSUBACK and PINGRESP only travel server → client.
      connection.protocolViolation(ReasonCode.ProtocolError, `${packet.cmd} sent by a client`);
  }
}

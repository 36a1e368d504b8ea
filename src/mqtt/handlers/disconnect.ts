import type { IDisconnectPacket } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { ReasonCode } from '../reason-codes.js';

/**
 * A client's DISCONNECT: the will is discarded only on a normal disconnection,
 * reason code 0x00 [MQTT-3.1.2-10]; 0x04 asks for it, and so does every error
 * code an MQTT 5 client may give (0x80 and up). It may also change the
 * Session Expiry Interval, but not from 0 to more [MQTT-3.14.2-2].
 */
export function handleDisconnect(connection: Connection, packet: IDisconnectPacket): void {
  const expiry = packet.properties?.sessionExpiryInterval;
  if (expiry !== undefined) {
    const { session } = connection;
    if (session.expiryInterval === 0 && expiry > 0) {
      connection.protocolViolation(
        ReasonCode.ProtocolError,
        'session expiry set after CONNECT gave 0',
      );
      return;
    }
    session.expiryInterval = connection.limitSessionExpiry(expiry);
  }
  connection.clientDisconnected(
    (packet.reasonCode ?? ReasonCode.NormalDisconnection) !== ReasonCode.NormalDisconnection,
  );
}

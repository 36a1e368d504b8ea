import type { IDisconnectPacket } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { ReasonCode } from '../reason-codes.js';

/**
 * A client's DISCONNECT: the will is discarded [MQTT-3.1.2-10], except that an
 * MQTT 5 client may ask for it with reason code 0x04. It may also change the
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
  connection.clientDisconnected(packet.reasonCode === ReasonCode.DisconnectWithWill);
}

import type { IDisconnectPacket } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { ReasonCode } from '../reason-codes.js';

/**
 * A client's DISCONNECT: the will is discarded [MQTT-3.1.2-10], except that an
 * MQTT 5 client may ask for it with reason code 0x04.
 */
export function handleDisconnect(connection: Connection, packet: IDisconnectPacket): void {
  connection.clientDisconnected(packet.reasonCode === ReasonCode.DisconnectWithWill);
}

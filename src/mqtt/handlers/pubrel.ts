import type { IPubrelPacket } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { ReasonCode } from '../reason-codes.js';

/**
 * PUBREL ends a QoS 2 exchange: forget the packet id, answer PUBCOMP
 * [MQTT-4.3.3-11]. Until now, retransmissions of that id were not produced again.
 */
export function handlePubrel(connection: Connection, packet: IPubrelPacket): void {
  const id = packet.messageId ?? 0;
  const { session } = connection;
  const state = session.qos2Received.get(id);
  if (state === 'producing') {
    // PUBREL may only answer a PUBREC, and none was sent for this id yet.
    connection.protocolViolation(ReasonCode.ProtocolError, `PUBREL for ${id} before PUBREC`);
    return;
  }
  if (session.qos2Received.delete(id)) connection.broker.sessionChanged(session);
  connection.send({
    cmd: 'pubcomp',
    messageId: id,
    ...(connection.protocolVersion === 5 && state === undefined
      ? { reasonCode: ReasonCode.PacketIdentifierNotFound }
      : {}),
  });
}

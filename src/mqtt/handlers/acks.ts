import type { IPubackPacket, IPubcompPacket, IPubrecPacket } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { ReasonCode } from '../reason-codes.js';

/** PUBACK from the client ends a QoS 1 delivery [MQTT-4.3.2]. */
export function handlePuback(connection: Connection, packet: IPubackPacket): void {
  connection.session.acknowledge('puback', packet.messageId ?? 0);
}

/** PUBREC from the client: answer PUBREL [MQTT-4.3.3-4]; an unknown id gets 0x92 on MQTT 5. */
export function handlePubrec(connection: Connection, packet: IPubrecPacket): void {
  const id = packet.messageId ?? 0;
  if (connection.session.acknowledge('pubrec', id, packet.reasonCode ?? 0)) return;
  connection.send({
    cmd: 'pubrel',
    messageId: id,
    ...(connection.protocolVersion === 5
      ? { reasonCode: ReasonCode.PacketIdentifierNotFound }
      : {}),
  });
}

/** PUBCOMP from the client ends a QoS 2 delivery. */
export function handlePubcomp(connection: Connection, packet: IPubcompPacket): void {
  connection.session.acknowledge('pubcomp', packet.messageId ?? 0);
}

import type { ISubscribePacket, IUnsubscribePacket } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { ReasonCode } from '../reason-codes.js';

const NOT_YET = 'subscriptions are not supported by this version of the bridge';

/**
 * Subscriptions are not implemented yet: every filter is refused with a
 * failure return code, so clients know at once rather than waiting for
 * messages that never come. (CONNACK also tells MQTT 5 clients.)
 */
export function handleSubscribe(connection: Connection, packet: ISubscribePacket): void {
  const failure = connection.protocolVersion === 5 ? ReasonCode.ImplementationSpecificError : 0x80;
  connection.send({
    cmd: 'suback',
    messageId: packet.messageId ?? 0,
    granted: packet.subscriptions.map(() => failure),
    ...(connection.protocolVersion === 5 ? { properties: { reasonString: NOT_YET } } : {}),
  });
}

export function handleUnsubscribe(connection: Connection, packet: IUnsubscribePacket): void {
  connection.send({
    cmd: 'unsuback',
    messageId: packet.messageId ?? 0,
    // MQTT 5 carries one reason code per filter; 3.1.1's UNSUBACK has none.
    granted:
      connection.protocolVersion === 5
        ? packet.unsubscriptions.map(() => ReasonCode.NoSubscriptionExisted)
        : [],
  });
}

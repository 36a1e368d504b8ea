/** MQTT 5 reason codes used by the bridge (MQTT 5.0 §2.4). */
export const ReasonCode = {
  Success: 0x00,
  NormalDisconnection: 0x00,
  DisconnectWithWill: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  ServerUnavailable: 0x88,
  BadAuthenticationMethod: 0x8c,
  ServerShuttingDown: 0x8b,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  PacketTooLarge: 0x95,
  QuotaExceeded: 0x97,
  TopicAliasInvalid: 0x94,
  PayloadFormatInvalid: 0x99,
  UseAnotherServer: 0x9c,
  SubscriptionIdentifiersNotSupported: 0xa1,
} as const;

/** MQTT 3.1 / 3.1.1 CONNACK return codes (MQTT 3.1.1 §3.2.2.3). */
export const ConnackReturnCode = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
} as const;

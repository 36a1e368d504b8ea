/** MQTT 5 reason codes used by the bridge (MQTT 5.0 §2.4). */
export const ReasonCode = {
  Success: 0x00,
  NormalDisconnection: 0x00,
  DisconnectWithWill: 0x04,
  ContinueAuthentication: 0x18,
  ReAuthenticate: 0x19,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  BadAuthenticationMethod: 0x8c,
  ServerShuttingDown: 0x8b,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  TopicAliasInvalid: 0x94,
  PayloadFormatInvalid: 0x99,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  ConnectionRateExceeded: 0x9f,
  SubscriptionIdentifiersNotSupported: 0xa1,
} as const;

/** The reason codes a PUBACK or PUBREC may carry (MQTT 5.0 §3.4.2.1, §3.5.2.1). */
const PUBLISH_ACK_REASON_CODES: ReadonlySet<number> = new Set([
  0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99,
]);

/** `code` if a PUBACK/PUBREC may carry it, else 0x80 (Unspecified error). */
export function publishAckReasonCode(code: number): number {
  return PUBLISH_ACK_REASON_CODES.has(code) ? code : ReasonCode.UnspecifiedError;
}

/** MQTT 3.1 / 3.1.1 CONNACK return codes (MQTT 3.1.1 §3.2.2.3). */
export const ConnackReturnCode = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUserNameOrPassword: 4,
  NotAuthorized: 5,
} as const;

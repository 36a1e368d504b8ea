import type { QoS, UserProperties } from 'mqtt-packet';

/** MQTT 5 properties a message carries from publisher to subscribers [MQTT-3.3.2-...]. */
export interface MessageProperties {
  payloadFormatIndicator?: boolean;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: UserProperties;
}

/** A message inside the broker, independent of the packet it came in. */
export interface BrokerMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties: MessageProperties;
  /** Absolute expiry in ms since the epoch (Message Expiry Interval); undefined: never. */
  expiresAt: number | undefined;
  /** Who published it: No Local [MQTT-3.8.3-3] and the uplink's client id / username. */
  origin: { clientId: string; username: string | undefined };
}

/** Seconds left before `message` expires (at least 1), or undefined when it never does. */
export function secondsToLive(message: BrokerMessage, now: number): number | undefined {
  if (message.expiresAt === undefined) return undefined;
  return Math.max(1, Math.ceil((message.expiresAt - now) / 1000));
}

export function isExpired(message: BrokerMessage, now: number): boolean {
  return message.expiresAt !== undefined && message.expiresAt <= now;
}

/** The properties that travel with a message, taken from PUBLISH or will properties. */
export function pickMessageProperties(source: MessageProperties): MessageProperties {
  const picked: MessageProperties = {};
  if (source.payloadFormatIndicator !== undefined) {
    picked.payloadFormatIndicator = source.payloadFormatIndicator;
  }
  if (source.contentType !== undefined) picked.contentType = source.contentType;
  if (source.responseTopic !== undefined) picked.responseTopic = source.responseTopic;
  if (source.correlationData !== undefined) picked.correlationData = source.correlationData;
  if (source.userProperties !== undefined) picked.userProperties = source.userProperties;
  return picked;
}

/** Absolute expiry for a Message Expiry Interval in seconds, received now. */
export function expiryFrom(interval: number | undefined, now: number): number | undefined {
  return interval !== undefined ? now + interval * 1000 : undefined;
}

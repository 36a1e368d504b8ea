import type { QoS, UserProperties } from 'mqtt-packet';
import type { BrokerMessage, MessageProperties } from '../mqtt/message.js';

/** Header holding a retained message's metadata as JSON; the record value is its payload. */
export const RETAINED_HEADER = 'mqtt-retained';

/** Version of the metadata, its first field. */
const VERSION = 1;

/** A message's MQTT 5 properties as JSON (correlation data in base64). */
export interface PropertiesJson {
  payloadFormatIndicator?: boolean;
  contentType?: string;
  responseTopic?: string;
  /** Base64. */
  correlationData?: string;
  userProperties?: UserProperties;
}

/** A retained message's metadata as JSON (the MQTT topic is the record key). */
interface RetainedMetadata extends PropertiesJson {
  v: typeof VERSION;
  qos: QoS;
  expiresAt?: number;
  clientId: string;
  username?: string;
}

/** The properties of a message, as JSON. */
export function propertiesToJson(properties: MessageProperties): PropertiesJson {
  return {
    ...(properties.payloadFormatIndicator !== undefined && {
      payloadFormatIndicator: properties.payloadFormatIndicator,
    }),
    ...(properties.contentType !== undefined && { contentType: properties.contentType }),
    ...(properties.responseTopic !== undefined && { responseTopic: properties.responseTopic }),
    ...(properties.correlationData !== undefined && {
      correlationData: properties.correlationData.toString('base64'),
    }),
    ...(properties.userProperties !== undefined && { userProperties: properties.userProperties }),
  };
}

/** The properties stored as JSON; fields of the wrong type are left out. */
export function propertiesFromJson(stored: Record<string, unknown>): MessageProperties {
  const properties: MessageProperties = {};
  if (typeof stored.payloadFormatIndicator === 'boolean') {
    properties.payloadFormatIndicator = stored.payloadFormatIndicator;
  }
  if (typeof stored.contentType === 'string') properties.contentType = stored.contentType;
  if (typeof stored.responseTopic === 'string') properties.responseTopic = stored.responseTopic;
  if (typeof stored.correlationData === 'string') {
    properties.correlationData = Buffer.from(stored.correlationData, 'base64');
  }
  if (typeof stored.userProperties === 'object' && stored.userProperties !== null) {
    properties.userProperties = stored.userProperties as UserProperties;
  }
  return properties;
}

/** The record value (the payload as it is) and metadata header of a retained message. */
export function encodeRetained(message: BrokerMessage): { value: Buffer; metadata: string } {
  const metadata: RetainedMetadata = {
    v: VERSION,
    qos: message.qos,
    ...(message.expiresAt !== undefined && { expiresAt: message.expiresAt }),
    ...propertiesToJson(message.properties),
    clientId: message.origin.clientId,
    ...(message.origin.username !== undefined && { username: message.origin.username }),
  };
  return { value: message.payload, metadata: JSON.stringify(metadata) };
}

/** The retained message a record holds; throws an Error saying what is wrong with it. */
export function decodeRetained(topic: string, value: Buffer, metadata: string): BrokerMessage {
  const parsed: unknown = JSON.parse(metadata);
  if (typeof parsed !== 'object' || parsed === null || !('v' in parsed) || parsed.v !== VERSION) {
    throw new Error(`no ${RETAINED_HEADER} metadata of version ${VERSION}`);
  }
  const stored = parsed as Record<string, unknown>;
  const { qos, clientId, username, expiresAt } = stored;
  if ((qos !== 0 && qos !== 1 && qos !== 2) || typeof clientId !== 'string') {
    throw new Error('qos or clientId missing or invalid');
  }
  return {
    topic,
    payload: value,
    qos,
    retain: true,
    properties: propertiesFromJson(stored),
    expiresAt: typeof expiresAt === 'number' ? expiresAt : undefined,
    origin: { clientId, username: typeof username === 'string' ? username : undefined },
  };
}

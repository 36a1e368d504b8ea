import type { QoS, UserProperties } from 'mqtt-packet';
import type { BrokerMessage, MessageProperties } from '../mqtt/message.js';

/** Version of the stored form, first field of every record value. */
const VERSION = 1;

/** A retained message as JSON in the retained topic (the MQTT topic is the record key). */
interface StoredRetained {
  v: typeof VERSION;
  qos: QoS;
  /** Base64. */
  payload: string;
  expiresAt?: number;
  payloadFormatIndicator?: boolean;
  contentType?: string;
  responseTopic?: string;
  /** Base64. */
  correlationData?: string;
  userProperties?: UserProperties;
  clientId: string;
  username?: string;
}

/** The record value of a retained message. */
export function encodeRetained(message: BrokerMessage): Buffer {
  const { properties } = message;
  const stored: StoredRetained = {
    v: VERSION,
    qos: message.qos,
    payload: message.payload.toString('base64'),
    ...(message.expiresAt !== undefined && { expiresAt: message.expiresAt }),
    ...(properties.payloadFormatIndicator !== undefined && {
      payloadFormatIndicator: properties.payloadFormatIndicator,
    }),
    ...(properties.contentType !== undefined && { contentType: properties.contentType }),
    ...(properties.responseTopic !== undefined && { responseTopic: properties.responseTopic }),
    ...(properties.correlationData !== undefined && {
      correlationData: properties.correlationData.toString('base64'),
    }),
    ...(properties.userProperties !== undefined && { userProperties: properties.userProperties }),
    clientId: message.origin.clientId,
    ...(message.origin.username !== undefined && { username: message.origin.username }),
  };
  return Buffer.from(JSON.stringify(stored));
}

/** The retained message a record holds; throws an Error saying what is wrong with it. */
export function decodeRetained(topic: string, value: Buffer): BrokerMessage {
  const parsed: unknown = JSON.parse(value.toString('utf8'));
  if (typeof parsed !== 'object' || parsed === null || !('v' in parsed) || parsed.v !== VERSION) {
    throw new Error(`not a retained message of version ${VERSION}`);
  }
  const stored = parsed as Record<string, unknown>;
  const { qos, payload, clientId, username, expiresAt } = stored;
  if (
    (qos !== 0 && qos !== 1 && qos !== 2) ||
    typeof payload !== 'string' ||
    typeof clientId !== 'string'
  ) {
    throw new Error('qos, payload or clientId missing or invalid');
  }
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
  return {
    topic,
    payload: Buffer.from(payload, 'base64'),
    qos,
    retain: true,
    properties,
    expiresAt: typeof expiresAt === 'number' ? expiresAt : undefined,
    origin: { clientId, username: typeof username === 'string' ? username : undefined },
  };
}

import type { QoS } from 'mqtt-packet';
import type { MailboxDelivery } from './mailbox-cursors.js';
import { propertiesFromJson, propertiesToJson, type PropertiesJson } from './retained-codec.js';

/** Header holding a kept message's metadata as JSON; the record value is its payload. */
export const DELIVERY_HEADER = 'mqtt-delivery';

const VERSION = 1;

interface DeliveryJson extends PropertiesJson {
  v: typeof VERSION;
  topic: string;
  /** The QoS it goes to the session with. */
  qos: QoS;
  retain: boolean;
  ids?: number[];
  expiresAt?: number;
  clientId: string;
  username?: string;
}

/** The metadata header of a message kept for a session (the payload is the record value). */
export function encodeDelivery(delivery: MailboxDelivery): string {
  const { message } = delivery;
  const json: DeliveryJson = {
    v: VERSION,
    topic: message.topic,
    qos: delivery.qos,
    retain: delivery.retain,
    ...(delivery.subscriptionIds.length > 0 && { ids: delivery.subscriptionIds }),
    ...(message.expiresAt !== undefined && { expiresAt: message.expiresAt }),
    ...propertiesToJson(message.properties),
    clientId: message.origin.clientId,
    ...(message.origin.username !== undefined && { username: message.origin.username }),
  };
  return JSON.stringify(json);
}

/** The delivery a record holds; throws an Error saying what is wrong with it. */
export function decodeDelivery(payload: Buffer, metadata: string): MailboxDelivery {
  const parsed: unknown = JSON.parse(metadata);
  if (typeof parsed !== 'object' || parsed === null || !('v' in parsed) || parsed.v !== VERSION) {
    throw new Error(`no ${DELIVERY_HEADER} metadata of version ${VERSION}`);
  }
  const json = parsed as DeliveryJson;
  if (typeof json.topic !== 'string' || ![0, 1, 2].includes(json.qos)) {
    throw new Error('topic or qos missing or invalid');
  }
  return {
    message: {
      topic: json.topic,
      payload,
      qos: json.qos,
      retain: json.retain,
      properties: propertiesFromJson(json as unknown as Record<string, unknown>),
      expiresAt: json.expiresAt,
      origin: { clientId: json.clientId, username: json.username },
    },
    qos: json.qos,
    retain: json.retain,
    subscriptionIds: json.ids ?? [],
  };
}

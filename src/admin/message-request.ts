import type { UserProperties } from 'mqtt-packet';
import { expiryFrom, type BrokerMessage, type MessageProperties } from '../mqtt/message.js';
import { topicOverLimit, type TopicLimits } from '../mqtt/topic-limits.js';
import { topicNameProblem } from '../mqtt/topic-name.js';
import type { UplinkPublish } from '../rules/types.js';
import { ApiError } from './http-io.js';

/*
 * The bodies of POST /api/publish and POST /api/mappings/test: a message as JSON, checked as
 * the broker checks a client's PUBLISH (topic name, topic limits), each problem a 400 naming
 * the field.
 */

/** The client id admin publishes come from, as the rules (`{clientId}`) and No Local see it. */
export const ADMIN_ORIGIN = '$admin';

const PUBLISH_FIELDS = [
  'topic',
  'payload',
  'payloadEncoding',
  'qos',
  'retain',
  'userProperties',
  'contentType',
  'responseTopic',
  'correlationData',
  'payloadFormatIndicator',
  'messageExpiryInterval',
] as const;

const TEST_FIELDS = [
  'topic',
  'payload',
  'payloadEncoding',
  'qos',
  'retain',
  'clientId',
  'username',
  'userProperties',
  'contentType',
] as const;

/** Standard base64 with its padding optional; Buffer.from would take anything. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The message to publish as the administrator (origin client id `$admin`). */
export function publishRequest(body: Record<string, unknown>, limits: TopicLimits): BrokerMessage {
  const fields = new Fields(body, PUBLISH_FIELDS);
  const topic = fields.topic('topic', limits);
  const payload = fields.payload();
  const properties: MessageProperties = {};
  const userProperties = fields.userProperties();
  if (userProperties !== undefined) properties.userProperties = userProperties;
  const contentType = fields.optionalString('contentType');
  if (contentType !== undefined) properties.contentType = contentType;
  if (body.responseTopic !== undefined) {
    properties.responseTopic = fields.topic('responseTopic', limits);
  }
  const correlationData = fields.optionalString('correlationData');
  if (correlationData !== undefined) properties.correlationData = Buffer.from(correlationData);
  const format = fields.optionalBoolean('payloadFormatIndicator');
  if (format !== undefined) properties.payloadFormatIndicator = format;
  const expiry = fields.optionalInteger('messageExpiryInterval', 0, 0xffffffff);
  return {
    topic,
    payload,
    qos: fields.qos(),
    retain: fields.optionalBoolean('retain') ?? false,
    properties,
    expiresAt: expiryFrom(expiry, Date.now()),
    origin: { clientId: ADMIN_ORIGIN, username: undefined },
  };
}

/** The publish a dry run of the uplink rules routes (as `mappings test`). */
export function testRequest(body: Record<string, unknown>, limits: TopicLimits): UplinkPublish {
  const fields = new Fields(body, TEST_FIELDS);
  const userProperties = fields.userProperties() ?? {};
  return {
    topic: fields.topic('topic', limits),
    payload: fields.payload(),
    qos: fields.qos(),
    retain: fields.optionalBoolean('retain') ?? false,
    clientId: fields.optionalString('clientId') ?? 'mappings-test',
    username: fields.optionalString('username'),
    userProperties: Object.entries(userProperties).flatMap(([name, value]) =>
      (Array.isArray(value) ? value : [value]).map((item) => [name, item] as const),
    ),
    contentType: fields.optionalString('contentType'),
  };
}

/** Typed reads of a JSON body's fields; unknown fields are refused (a typo would go unseen). */
class Fields {
  readonly #body: Record<string, unknown>;

  constructor(body: Record<string, unknown>, known: readonly string[]) {
    this.#body = body;
    const unknown = Object.keys(body).filter((name) => !known.includes(name));
    if (unknown.length > 0) {
      throw new ApiError(
        'BAD_REQUEST',
        `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known: ${known.join(', ')}`,
      );
    }
  }

  topic(name: string, limits: TopicLimits): string {
    const topic = this.optionalString(name);
    if (topic === undefined) throw bad(name, 'required');
    const problem = topicNameProblem(topic);
    if (problem !== undefined) throw bad(name, problem);
    const overLimit = topicOverLimit(topic, limits);
    if (overLimit !== undefined) throw bad(name, `beyond ${overLimit}`);
    return topic;
  }

  payload(): Buffer {
    const payload = this.optionalString('payload') ?? '';
    const encoding = this.optionalString('payloadEncoding') ?? 'utf8';
    if (encoding === 'utf8') return Buffer.from(payload, 'utf8');
    if (encoding !== 'base64') throw bad('payloadEncoding', 'must be utf8 or base64');
    if (!BASE64.test(payload) || payload.replace(/=+$/, '').length % 4 === 1) {
      throw bad('payload', 'not base64');
    }
    return Buffer.from(payload, 'base64');
  }

  qos(): 0 | 1 | 2 {
    return (this.optionalInteger('qos', 0, 2) ?? 0) as 0 | 1 | 2;
  }

  /** `{ "name": "value" }` or `{ "name": ["value", ...] }` (a repeated property). */
  userProperties(): UserProperties | undefined {
    const value = this.#body.userProperties;
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw bad('userProperties', 'must be an object of strings or lists of strings');
    }
    for (const [name, item] of Object.entries(value)) {
      const items: unknown[] = Array.isArray(item) ? item : [item];
      if (!items.every((text) => typeof text === 'string')) {
        throw bad(`userProperties.${name}`, 'must be a string or a list of strings');
      }
    }
    return value as UserProperties;
  }

  optionalString(name: string): string | undefined {
    const value = this.#body[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw bad(name, 'must be a string');
    return value;
  }

  optionalBoolean(name: string): boolean | undefined {
    const value = this.#body[name];
    if (value === undefined || typeof value === 'boolean') return value;
    throw bad(name, 'must be true or false');
  }

  optionalInteger(name: string, min: number, max: number): number | undefined {
    const value = this.#body[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw bad(name, `must be an integer from ${min} to ${max}`);
    }
    return value;
  }
}

function bad(field: string, problem: string): ApiError {
  return new ApiError('BAD_REQUEST', `${field}: ${problem}`);
}

import type { IConnectPacket, QoS } from 'mqtt-packet';
import type { Proof } from '../auth/identity.js';
import type { Subscription } from '../mqtt/session.js';
import { propertiesFromJson, propertiesToJson, type PropertiesJson } from './retained-codec.js';
import type { Ownership } from './session-fencing.js';
import type { MailboxPosition, SessionState } from '../mqtt/session-store.js';

export type { MailboxPosition, SessionState };

/*
 * A session as the sessions topic keeps it (compacted, key = "s:" + client id). The value is
 * JSON; owner and epoch are also in headers, so that an end (a tombstone, no value) is fenced
 * like any other record.
 */

/** Headers every session record carries. */
export const OWNER_HEADER = 'mqtt-session-owner';
export const EPOCH_HEADER = 'mqtt-session-epoch';

/** Record keys: sessions and, beside them, other kinds of records in the same topic. */
const SESSION_KEY_PREFIX = 's:';

const VERSION = 1;

type Will = NonNullable<IConnectPacket['will']>;

interface WillJson extends PropertiesJson {
  topic: string;
  /** Base64. */
  payload: string;
  qos: QoS;
  retain: boolean;
  delay?: number;
  expiry?: number;
}

interface StateJson {
  v: typeof VERSION;
  online: boolean;
  disconnectedAt?: number;
  username?: string;
  proof: Proof;
  claims?: Record<string, unknown>;
  expiresAt?: number;
  assignedId?: true;
  expiry: number;
  subs: Array<[string, QoS, number, number?]>;
  will?: WillJson;
  willAt?: number;
  qos2?: number[];
  mailbox?: { p: number; next: string; rel?: Array<[string, number]> };
}

/** Subscription options packed in one number: bit 0 no local, bit 1 retain as published, bits 2-3 retain handling. */
function packOptions(subscription: Subscription): number {
  return (
    (subscription.noLocal ? 1 : 0) |
    (subscription.retainAsPublished ? 2 : 0) |
    (subscription.retainHandling << 2)
  );
}

export function sessionKey(clientId: string): string {
  return `${SESSION_KEY_PREFIX}${clientId}`;
}

/** The client id of a session record's key; undefined for other keys. */
export function clientIdOfKey(key: string): string | undefined {
  return key.startsWith(SESSION_KEY_PREFIX) ? key.slice(SESSION_KEY_PREFIX.length) : undefined;
}

export function ownershipHeaders(ownership: Ownership): Record<string, string> {
  return { [OWNER_HEADER]: ownership.owner, [EPOCH_HEADER]: String(ownership.epoch) };
}

/** The ownership in a record's headers; undefined when they are missing or malformed. */
export function ownershipOf(
  headers: Record<string, Buffer | string | Array<Buffer | string> | undefined> | undefined,
): Ownership | undefined {
  const owner = headers?.[OWNER_HEADER]?.toString();
  const epoch = Number(headers?.[EPOCH_HEADER]?.toString());
  if (owner === undefined || owner === '' || !Number.isSafeInteger(epoch) || epoch < 1) {
    return undefined;
  }
  return { owner, epoch };
}

export function encodeSessionState(state: SessionState): string {
  const { identity, will, mailbox } = state;
  const json: StateJson = {
    v: VERSION,
    online: state.online,
    ...(state.disconnectedAt !== undefined && { disconnectedAt: state.disconnectedAt }),
    ...(identity.username !== undefined && { username: identity.username }),
    proof: identity.proof,
    ...(identity.claims !== undefined && { claims: { ...identity.claims } }),
    ...(identity.expiresAt !== undefined && { expiresAt: identity.expiresAt }),
    ...(state.assignedId && { assignedId: true }),
    expiry: state.expiryInterval,
    subs: [...state.subscriptions].map(([filter, subscription]) => {
      const packed: [string, QoS, number, number?] = [
        filter,
        subscription.qos,
        packOptions(subscription),
      ];
      if (subscription.identifier !== undefined) packed.push(subscription.identifier);
      return packed;
    }),
    ...(will && { will: encodeWill(will) }),
    ...(state.willAt !== undefined && { willAt: state.willAt }),
    ...(state.qos2Received.length > 0 && { qos2: state.qos2Received }),
    ...(mailbox && {
      mailbox: {
        p: mailbox.partition,
        next: mailbox.next.toString(),
        ...(mailbox.released.size > 0 && {
          rel: [...mailbox.released].map(([offset, id]): [string, number] => [
            offset.toString(),
            id,
          ]),
        }),
      },
    }),
  };
  return JSON.stringify(json);
}

/** The state a record holds; throws an Error saying what is wrong with it. */
export function decodeSessionState(text: string): SessionState {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || !('v' in parsed) || parsed.v !== VERSION) {
    throw new Error(`not a session record of version ${VERSION}`);
  }
  const json = parsed as StateJson;
  if (
    typeof json.online !== 'boolean' ||
    typeof json.expiry !== 'number' ||
    !Array.isArray(json.subs)
  ) {
    throw new Error('online, expiry or subs missing');
  }
  const subscriptions = new Map<string, Subscription>();
  for (const [filter, qos, options, identifier] of json.subs) {
    subscriptions.set(filter, {
      qos,
      noLocal: (options & 1) !== 0,
      retainAsPublished: (options & 2) !== 0,
      retainHandling: ((options >> 2) & 3) as Subscription['retainHandling'],
      identifier,
    });
  }
  return {
    online: json.online,
    disconnectedAt: json.disconnectedAt,
    identity: {
      username: json.username,
      proof: json.proof,
      ...(json.claims !== undefined && { claims: json.claims }),
      ...(json.expiresAt !== undefined && { expiresAt: json.expiresAt }),
    },
    assignedId: json.assignedId === true,
    expiryInterval: json.expiry,
    subscriptions,
    will: json.will && decodeWill(json.will),
    willAt: json.willAt,
    qos2Received: json.qos2 ?? [],
    mailbox: json.mailbox && {
      partition: json.mailbox.p,
      next: BigInt(json.mailbox.next),
      released: new Map((json.mailbox.rel ?? []).map(([offset, id]) => [BigInt(offset), id])),
    },
  };
}

function encodeWill(will: Will): WillJson {
  const properties = will.properties ?? {};
  return {
    topic: will.topic,
    payload: Buffer.from(will.payload).toString('base64'),
    qos: will.qos ?? 0,
    retain: will.retain ?? false,
    ...propertiesToJson(properties),
    ...(properties.willDelayInterval !== undefined && { delay: properties.willDelayInterval }),
    ...(properties.messageExpiryInterval !== undefined && {
      expiry: properties.messageExpiryInterval,
    }),
  };
}

function decodeWill(json: WillJson): Will {
  const properties: NonNullable<Will['properties']> = propertiesFromJson(
    json as unknown as Record<string, unknown>,
  );
  if (json.delay !== undefined) properties.willDelayInterval = json.delay;
  if (json.expiry !== undefined) properties.messageExpiryInterval = json.expiry;
  return {
    topic: json.topic,
    payload: Buffer.from(json.payload, 'base64'),
    qos: json.qos,
    retain: json.retain,
    properties,
  };
}

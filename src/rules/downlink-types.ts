/**
 * The shapes of the downlink rules: the Kafka consumer hands the router a `DownlinkRecord`; the
 * MQTT side receives `DownlinkMessage`s. Neither side knows the other's library types.
 */

/** A Kafka record as the downlink rules see it (from KafkaJS eachMessage). */
export interface DownlinkRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  /** null: a tombstone. */
  value: Buffer | null;
  headers: Record<string, Buffer | string | Array<Buffer | string> | undefined>;
  /** Epoch milliseconds, as KafkaJS gives it. */
  timestamp: string;
}

/** What a rule turns a record into: one MQTT message. */
export interface DownlinkMessage {
  /** A valid MQTT topic name: not empty, no wildcards. */
  topic: string;
  /** A tombstone gives an empty payload (with retain: clears the retained message). */
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** Absolute expiry, epoch ms; undefined: never. */
  expiresAt: number | undefined;
  properties: {
    contentType?: string;
    payloadFormatIndicator?: boolean;
    responseTopic?: string;
    correlationData?: Buffer;
    userProperties?: Record<string, string | string[]>;
  };
}

export type DownlinkResult =
  | {
      kind: 'message';
      rule: string;
      message: DownlinkMessage;
      /**
       * A reply rule's message: the requesting client, whose rights decide whether the message
       * may go to its topic. Absent for other rules.
       */
      replyFor?: Requester;
    }
  /** The rule cannot map the record: value not JSON/Avro, a template field missing, bad topic… */
  | { kind: 'invalid'; rule: string; error: string };

/** The client a reply answers: its id, or why the record names none (a header missing…). */
export type Requester = { clientId: string } | { missing: string };

/**
 * Whether a reply rule's message may go to its topic for the requesting client (the broker
 * judges): `allowed`, `unknown-client` (no session of that client id, or no id) or `not-allowed`.
 */
export type ReplyCheck = 'allowed' | 'unknown-client' | 'not-allowed';

/** Where one rule reads from: exact topic names or a pattern, and its consumer group. */
export interface DownlinkSource {
  rule: string;
  /** Exact Kafka topic names, or undefined when `pattern` is set. */
  topics: string[] | undefined;
  /** Topic names matched as a whole (anchored), or undefined when `topics` is set. */
  pattern: RegExp | undefined;
  /** undefined: the bridge's default downlink group id. */
  groupId: string | undefined;
  /** Where a new consumer group starts. */
  start: 'earliest' | 'latest';
}

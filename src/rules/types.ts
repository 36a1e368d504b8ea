/**
 * The shapes the rules engine speaks. The MQTT side hands the router an
 * `UplinkPublish`; the Kafka side receives `KafkaRecord`s. Neither side knows
 * the other's library types.
 */

/** One MQTT PUBLISH as the rules see it (after topic-alias resolution). */
export interface UplinkPublish {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  clientId: string;
  username: string | undefined;
  /** MQTT 5 user properties, in the order the client sent them. */
  userProperties: ReadonlyArray<readonly [name: string, value: string]>;
  /** MQTT 5 Content Type; undefined when absent (and for MQTT 3.1.1). */
  contentType?: string | undefined;
  /** MQTT 5 Response Topic. */
  responseTopic?: string | undefined;
  /** MQTT 5 Correlation Data. */
  correlationData?: Buffer | undefined;
  /** MQTT 5 Payload Format Indicator: true when the client declared the payload UTF-8. */
  payloadFormatIndicator?: boolean | undefined;
}

/** A Kafka header value; a repeated header is a list. */
export type HeaderValue = string | Buffer | Array<string | Buffer>;

/** One record to produce. `partition` undefined means: the producer's partitioner (murmur2 of the key). */
export interface KafkaRecord {
  topic: string;
  key: string | null;
  value: Buffer;
  partition: number | undefined;
  /** Milliseconds since the epoch. */
  timestamp: number;
  headers: Record<string, HeaderValue>;
}

/**
 * How a record's partition is chosen: `hash` leaves `partition` undefined for the producer's
 * murmur2 partitioner; `round-robin` is decided by the uplink, which knows partition counts;
 * `explicit` carries a number the uplink checks against the topic's partition count.
 */
export type Partitioner = 'hash' | 'round-robin' | 'explicit';

/** A record together with the rule that produced it (for `mappings test`, logs and metrics). */
export interface RoutedRecord {
  rule: string;
  partitioner: Partitioner;
  record: KafkaRecord;
}

/** Where something is in a mapping file, 1-based. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

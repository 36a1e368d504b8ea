import type { DownlinkValueSpec } from './codecs/downlink-value.js';
import type { DownlinkTemplate } from './downlink-templates.js';
import type { ExpirySpec } from './expiry.js';
import type { SourcePosition } from './types.js';

/** Where a new consumer group starts reading. */
export type StartPosition = 'earliest' | 'latest';

/** One validated, compiled `downlink` rule; mirrors the mapping file's structure. */
export interface DownlinkRule {
  name: string;
  /** Where the rule's name is written. */
  position: SourcePosition;
  from: {
    /** Exact topic names; undefined when `pattern` is set. */
    topics: string[] | undefined;
    /** Anchored: matches whole topic names. */
    pattern: RegExp | undefined;
    group: string | undefined;
    start: StartPosition;
    /** Where `from` is written. */
    position: SourcePosition;
  };
  to: {
    topic: DownlinkTemplate;
    qos: 0 | 1 | 2;
    retain: boolean;
    expiry: ExpirySpec | undefined;
    contentType: DownlinkTemplate | undefined;
    responseTopic: DownlinkTemplate | undefined;
    /** The header whose (last) value is the correlation data. */
    correlationData: string | undefined;
    /** Headers copied to user properties: all, or those named. */
    userProperties: 'all' | readonly string[];
    /**
     * A reply rule: the client id of the client whose request this record answers. With
     * authentication on, its message goes out only to a topic that client may subscribe to, or
     * one under its Response Information; otherwise the record is dead-lettered. Implicit
     * (`{header.mqtt-client-id}`) when `topic` reads the header `mqtt-response-topic`.
     */
    replyFor: DownlinkTemplate | undefined;
  };
  value: DownlinkValueSpec;
}

import type { TopicFilter } from './filter.js';
import type { HeaderSpec } from './headers.js';
import type { Template } from './templates.js';
import type { SourcePosition } from './types.js';

/** One validated, compiled `uplink` rule; mirrors the mapping file's structure. */
export interface UplinkRule {
  name: string;
  /** Where the rule's name is written. */
  position: SourcePosition;
  /** Tried in order; a publish matched by several filters of one rule yields one record. */
  filters: TopicFilter[];
  to: HeaderSpec & {
    topic: Template;
    /** Undefined: the MQTT topic is the key. */
    key: Template | undefined;
    /** Undefined: the producer's partitioner (murmur2 of the key). */
    partition: number | undefined;
  };
  value: { format: 'raw' };
}

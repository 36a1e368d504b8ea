import type { ValueSpec } from './codecs/value.js';
import type { Condition } from './conditions.js';
import type { DownlinkRule } from './downlink-rule.js';
import type { TopicFilter } from './filter.js';
import type { HeaderSpec } from './headers.js';
import type { PartitionSpec } from './partition.js';
import type { Template } from './templates.js';
import type { TimestampSpec } from './timestamp.js';
import type { SourcePosition } from './types.js';

/** One validated, compiled `uplink` rule; mirrors the mapping file's structure. */
export interface UplinkRule {
  name: string;
  /** Where the rule's name is written. */
  position: SourcePosition;
  /** Tried in order; a publish matched by several filters of one rule yields one record. */
  filters: TopicFilter[];
  /** `where`: all must hold for the rule to match (none: always). */
  conditions: Condition[];
  /** `final: true`: once this rule matched, later rules are not tried. */
  final: boolean;
  to: HeaderSpec & {
    topic: Template;
    /** Undefined: the MQTT topic is the key. */
    key: Template | undefined;
    partition: PartitionSpec;
    timestamp: TimestampSpec;
  };
  value: ValueSpec;
}

/** What happens to a publish that no rule matches (`unmatched:` of a mapping file). */
export type UnmatchedPolicy =
  { action: 'drop' } | { action: 'reject' } | { action: 'forward'; topic: string };

/** Settings of the whole mapping set, written at most once across its files. */
export interface MappingSettings {
  unmatched: UnmatchedPolicy;
  /** Kafka topic for publishes whose payload a rule cannot encode; undefined: none. */
  deadLetterTopic: string | undefined;
}

/** One mapping file, read. */
export interface MappingFile {
  rules: UplinkRule[];
  downlink: DownlinkRule[];
  /** Settings this file writes, with where. */
  unmatched?: { policy: UnmatchedPolicy; position: SourcePosition };
  deadLetter?: { topic: string; position: SourcePosition };
}

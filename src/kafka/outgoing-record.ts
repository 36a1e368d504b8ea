import type { KafkaRecord } from '../rules/types.js';
import type { ProduceFailure } from './produce-failure.js';

/** A record to produce: a mapped one, or a tombstone (null value) of a compacted topic. */
export type OutgoingRecord = Omit<KafkaRecord, 'value'> & { value: Buffer | null };

/** Called once per enqueued group of records: no argument when Kafka has all of them. */
export type Settle = (failure?: ProduceFailure) => void;

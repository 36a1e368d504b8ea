import type { Message } from 'kafkajs';
import type { HeaderValue } from '../rules/types.js';
import type { OutgoingRecord } from './outgoing-record.js';
import type { Entry } from './pending-entries.js';

/** One record of an entry, on its way to its partition. */
export interface Item {
  record: OutgoingRecord;
  entry: Entry;
}

/** The records for one partition, sent one request at a time, in order. */
export interface Lane {
  topic: string;
  partition: number;
  queue: Item[];
  /**
   * The batch of a request that failed for want of Kafka, to send again exactly as it was
   * (same records, same order): KafkaJS gives it the same sequence numbers again, so Kafka
   * drops it should the failed request have stored it after all. A batch with more records
   * would have the same first sequence number and another last one: Kafka would refuse it
   * (out of order), and the new producer that takes over would write the stored ones twice.
   */
  retry: Item[] | undefined;
  inFlight: boolean;
  /** Waiting for the next request (or for its backoff to end before it). */
  scheduled: boolean;
  backoffMs: number;
}

export function newLane(topic: string, partition: number): Lane {
  return {
    topic,
    partition,
    queue: [],
    retry: undefined,
    inFlight: false,
    scheduled: false,
    backoffMs: 0,
  };
}

export interface BatchLimits {
  batchMaxRecords: number;
  /** Bytes of keys, values and headers: what Kafka's message.max.bytes counts, about. */
  batchMaxBytes: number;
}

/** The records of one partition in one request, and their bytes (see recordSize). */
export interface Batch {
  lane: Lane;
  items: Item[];
  bytes: number;
}

/**
 * The next batch of a lane: its retry batch as it is, else the next records within the limits
 * (at least one). Records of settled entries at the front are dropped.
 */
export function takeBatch(lane: Lane, limits: BatchLimits): Batch {
  if (lane.retry) {
    const items = lane.retry;
    lane.retry = undefined;
    let bytes = 0;
    for (const item of items) bytes += recordSize(item.record);
    return { lane, items, bytes };
  }
  let bytes = 0;
  let taken = 0;
  const batch: Item[] = [];
  for (const item of lane.queue) {
    if (item.entry.settled) {
      taken++;
      continue;
    }
    const size = recordSize(item.record);
    const fits = batch.length + 1 <= limits.batchMaxRecords && bytes + size <= limits.batchMaxBytes;
    if (batch.length > 0 && !fits) break;
    batch.push(item);
    bytes += size;
    taken++;
  }
  lane.queue.splice(0, taken);
  return { lane, items: batch, bytes };
}

/** Bytes a record takes in a record batch, about: what Kafka's message.max.bytes counts. */
function recordSize(record: OutgoingRecord): number {
  let size = 24 + (record.value?.length ?? 0) + (record.key?.length ?? 0);
  const { headers } = record;
  // for…in, not Object.entries: no arrays per record on the hot path
  for (const name in headers) {
    const value = headers[name] as HeaderValue;
    if (Array.isArray(value)) for (const part of value) size += 8 + name.length + part.length;
    else size += 8 + name.length + value.length;
  }
  return size;
}

export function toMessage({ record }: Item): Message {
  return {
    key: record.key,
    value: record.value,
    headers: record.headers,
    timestamp: String(record.timestamp),
    partition: record.partition,
  };
}

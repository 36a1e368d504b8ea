/**
 * The records a bare producer sends: the same ones the bridge makes of the uplink load (key =
 * client id, the payload as value, the mqtt-topic and mqtt-client-id headers its default
 * `mqttHeaders` adds), or with --stamp downlink commands to devices (key = device client id, a
 * value beginning with its send time). Both bare producers take the same options.
 */
import { parseArgs } from 'node:util';
import { cpuSecondsSince } from '../child.js';
import { stampedValue } from '../payloads.js';

export interface BareRecord {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

export interface BareOptions {
  brokers: string[];
  topic: string;
  records: number;
  batch: number;
  /** Batches sent at once. */
  inFlight: number;
  /** A batch of records from the `first`-th on. */
  batchFrom(first: number, count: number): BareRecord[];
  /**
   * A record sent before the clock starts, so that the producer has the topic's metadata: its
   * key is no device's, so no subscriber counts it.
   */
  warmUp: BareRecord;
}

export function parseBareOptions(): BareOptions {
  const { values } = parseArgs({
    options: {
      brokers: { type: 'string', default: '127.0.0.1:9092' },
      topic: { type: 'string', default: '' },
      records: { type: 'string', default: '100000' },
      batch: { type: 'string', default: '1000' },
      'in-flight': { type: 'string', default: '1' },
      keys: { type: 'string', default: '50' },
      prefix: { type: 'string', default: 'gen' },
      payload: { type: 'string', default: '256' },
      stamp: { type: 'boolean', default: false },
    },
  });
  const keys = Array.from(
    { length: Number(values.keys) },
    (_, index) => `${values.prefix}${index}`,
  );
  const payload = Buffer.alloc(Number(values.payload), 'x');
  const uplink = keys.map((key) => ({
    key,
    value: payload,
    headers: { 'mqtt-topic': `bench/${key}/data`, 'mqtt-client-id': key },
  }));
  return {
    brokers: values.brokers.split(','),
    topic: values.topic,
    records: Number(values.records),
    batch: Number(values.batch),
    inFlight: Number(values['in-flight']),
    warmUp: { key: 'warm-up', value: payload, headers: {} },
    batchFrom: (first, count) =>
      Array.from({ length: count }, (_, index) => {
        const key = keys[(first + index) % keys.length] ?? '';
        return values.stamp
          ? { key, value: stampedValue(payload.length), headers: {} }
          : (uplink[(first + index) % keys.length] as BareRecord);
      }),
  };
}

/**
 * Sends every record in batches with `inFlight` batches at once; resolves with the seconds it
 * took and this process's CPU seconds.
 */
export async function produceAll(
  options: BareOptions,
  send: (records: BareRecord[]) => Promise<unknown>,
): Promise<{ records: number; seconds: number; cpuSeconds: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < options.records) {
      const first = next;
      const count = Math.min(options.batch, options.records - first);
      next += count;
      await send(options.batchFrom(first, count));
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, lane));
  return {
    records: options.records,
    seconds: (performance.now() - started) / 1000,
    cpuSeconds: cpuSecondsSince(cpu),
  };
}

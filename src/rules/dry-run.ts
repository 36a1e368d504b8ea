import type { Router } from './router.js';
import type { HeaderValue, RoutedRecord, UplinkPublish } from './types.js';

/*
 * A publish run through the uplink rules without Kafka: what `mappings test` prints and what the
 * admin API's POST /api/mappings/test answers. Records are shown as JSON, bytes as text when they
 * are printable UTF-8, else `{ base64 }`.
 */

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A record as JSON (see `dryRunUplink`). */
export interface RecordShown {
  rule: string;
  topic: string;
  key: string | null;
  partition: number | null;
  partitioner: RoutedRecord['partitioner'];
  timestamp: string;
  headers: Record<string, unknown>;
  value: BytesShown;
}

export type BytesShown = string | { base64: string };

export interface UplinkDryRun {
  /** `mapped`, `unmatched` (no rule matched), `rejected` (`unmatched: reject`) or `invalid`. */
  outcome: 'mapped' | 'unmatched' | 'rejected' | 'invalid';
  records: RecordShown[];
  /** Why a matching rule could not map the publish (`invalid`). */
  errors: Array<{ rule: string; error: string }>;
}

/** The records `router` makes of `publish`, and the rules' errors. */
export function dryRunUplink(router: Router, publish: UplinkPublish): UplinkDryRun {
  const routing = router.route(publish);
  const records = routing.kind === 'rejected' ? [] : routing.records.map(shown);
  const errors = routing.kind === 'invalid' ? routing.failures : [];
  return { outcome: routing.kind, records, errors };
}

function shown({ rule, partitioner, record }: RoutedRecord): RecordShown {
  return {
    rule,
    topic: record.topic,
    key: record.key,
    partition: record.partition ?? null,
    partitioner,
    timestamp: new Date(record.timestamp).toISOString(),
    headers: Object.fromEntries(
      Object.entries(record.headers).map(([name, value]) => [name, headerShown(value)]),
    ),
    value: bytesShown(record.value),
  };
}

function headerShown(value: HeaderValue): unknown {
  if (Array.isArray(value)) return value.map((item) => headerShown(item));
  return typeof value === 'string' ? value : bytesShown(value);
}

/** Control characters other than tab, line feed and carriage return mean binary data. */
function isPrintable(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) || code === 0x7f) {
      return false;
    }
  }
  return true;
}

export function bytesShown(bytes: Buffer): BytesShown {
  let text: string | undefined;
  try {
    text = UTF8.decode(bytes);
  } catch {
    text = undefined;
  }
  return text !== undefined && isPrintable(text) ? text : { base64: bytes.toString('base64') };
}

import { InvalidArgumentError } from 'commander';
import { MappingError, formatIssue } from './errors.js';
import { loadMappings } from './load.js';
import type { HeaderValue, RoutedRecord, UplinkPublish } from './types.js';

/*
 * `mqtt-kafka-bridge mappings validate|test`: the mapping files checked, or one publish run
 * through them, without Kafka or MQTT.
 */

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Prints every problem as `file:line:column: message`; returns the exit code. */
export async function validateMappings(path: string): Promise<number> {
  try {
    const router = await loadMappings(path);
    process.stdout.write(
      `${path}: ${router.ruleCount} rule${router.ruleCount === 1 ? '' : 's'}, no problems\n`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof MappingError)) throw error;
    for (const issue of error.issues) process.stderr.write(`${formatIssue(issue)}\n`);
    return 1;
  }
}

export interface TestOptions {
  mappings: string;
  topic: string;
  payload: string;
  clientId: string;
  username?: string;
  qos: 0 | 1 | 2;
  retain?: boolean;
  contentType?: string;
  userProperty: Array<[string, string]>;
}

/** Prints, as JSON, what the publish becomes; returns the exit code (1: the mappings are bad). */
export async function testMapping(options: TestOptions): Promise<number> {
  let router;
  try {
    router = await loadMappings(options.mappings);
  } catch (error) {
    if (!(error instanceof MappingError)) throw error;
    for (const issue of error.issues) process.stderr.write(`${formatIssue(issue)}\n`);
    return 1;
  }
  const publish: UplinkPublish = {
    topic: options.topic,
    payload: Buffer.from(options.payload),
    qos: options.qos,
    retain: options.retain ?? false,
    clientId: options.clientId,
    username: options.username,
    userProperties: options.userProperty,
    contentType: options.contentType,
  };
  const routing = router.route(publish);
  const records = routing.kind === 'rejected' ? [] : routing.records.map(shown);
  const errors = routing.kind === 'invalid' ? routing.failures : [];
  process.stdout.write(`${JSON.stringify({ outcome: routing.kind, records, errors }, null, 2)}\n`);
  return 0;
}

/** A record as JSON: bytes as text when they are printable UTF-8, else `{ base64 }`. */
function shown({ rule, partitioner, record }: RoutedRecord) {
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

function bytesShown(bytes: Buffer): string | { base64: string } {
  let text: string | undefined;
  try {
    text = UTF8.decode(bytes);
  } catch {
    text = undefined;
  }
  return text !== undefined && isPrintable(text) ? text : { base64: bytes.toString('base64') };
}

/** commander parser for `--qos`. */
export function parseQos(text: string): 0 | 1 | 2 {
  if (text === '0' || text === '1' || text === '2') return Number(text) as 0 | 1 | 2;
  throw new InvalidArgumentError('expected 0, 1 or 2');
}

/** commander parser for repeated `--user-property name=value`. */
export function collectUserProperty(
  text: string,
  previous: Array<[string, string]>,
): Array<[string, string]> {
  const equals = text.indexOf('=');
  if (equals <= 0) throw new InvalidArgumentError('expected name=value');
  return [...previous, [text.slice(0, equals), text.slice(equals + 1)]];
}

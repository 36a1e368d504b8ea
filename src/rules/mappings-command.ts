import { InvalidArgumentError } from 'commander';
import { MappingError, formatIssue } from './errors.js';
import { loadMappings } from './load.js';
import type { DownlinkRouter } from './downlink-router.js';
import type { DownlinkMessage, DownlinkRecord } from './downlink-types.js';
import type { Router } from './router.js';
import type { UplinkPublish } from './types.js';
import { bytesShown, dryRunUplink } from './dry-run.js';

/*
 * `mqtt-kafka-bridge mappings validate|test`: the mapping files checked, or one publish (or one
 * Kafka record, `--downlink`) run through them, without Kafka or MQTT.
 */

/** Prints every problem as `file:line:column: message`; returns the exit code. */
export async function validateMappings(path: string): Promise<number> {
  try {
    const { uplink, downlink } = await loadMappings(path);
    const counts = `${rules(uplink.ruleCount, 'uplink')}, ${rules(downlink.ruleCount, 'downlink')}`;
    process.stdout.write(`${path}: ${counts}, no problems\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof MappingError)) throw error;
    for (const issue of error.issues) process.stderr.write(`${formatIssue(issue)}\n`);
    return 1;
  }
}

function rules(count: number, kind: string): string {
  return `${count} ${kind} rule${count === 1 ? '' : 's'}`;
}

/** What `mappings test` prints for a publish (uplink) or, with `--downlink`, a Kafka record. */
export interface TestOptions {
  mappings: string;
  downlink?: boolean;
  topic?: string;
  payload?: string;
  clientId: string;
  username?: string;
  qos: 0 | 1 | 2;
  retain?: boolean;
  contentType?: string;
  userProperty: Array<[string, string]>;
  kafkaTopic?: string;
  key?: string;
  value?: string;
  valueBase64?: string;
  header: Array<[string, string]>;
  partition: number;
  offset: string;
}

/**
 * Prints, as JSON, what the publish (or with `downlink`, the Kafka record) becomes; returns the
 * exit code (1: the mappings are bad or the options incomplete).
 */
export async function testMapping(options: TestOptions): Promise<number> {
  const missing = options.downlink
    ? options.kafkaTopic === undefined && '--kafka-topic'
    : (options.topic === undefined && '--topic') || (options.payload === undefined && '--payload');
  if (missing) {
    process.stderr.write(
      `mappings test${options.downlink ? ' --downlink' : ''}: ${missing} is required\n`,
    );
    return 1;
  }
  let mappings;
  try {
    mappings = await loadMappings(options.mappings);
  } catch (error) {
    if (!(error instanceof MappingError)) throw error;
    for (const issue of error.issues) process.stderr.write(`${formatIssue(issue)}\n`);
    return 1;
  }
  const shown = options.downlink
    ? testDownlink(mappings.downlink, options)
    : testUplink(mappings.uplink, options);
  process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
  return 0;
}

function testUplink(router: Router, options: TestOptions) {
  const publish: UplinkPublish = {
    topic: options.topic ?? '',
    payload: Buffer.from(options.payload ?? ''),
    qos: options.qos,
    retain: options.retain ?? false,
    clientId: options.clientId,
    username: options.username,
    userProperties: options.userProperty,
    contentType: options.contentType,
  };
  return dryRunUplink(router, publish);
}

/**
 * The record's MQTT messages: `outcome` is `mapped`, `unmatched` (no rule reads the topic) or
 * `invalid` (a rule cannot map it: the record is dead-lettered).
 */
function testDownlink(router: DownlinkRouter, options: TestOptions) {
  const value =
    options.valueBase64 !== undefined
      ? Buffer.from(options.valueBase64, 'base64')
      : options.value === undefined
        ? null
        : Buffer.from(options.value);
  const headers: DownlinkRecord['headers'] = {};
  for (const [name, text] of options.header) {
    const existing = headers[name];
    headers[name] = existing === undefined ? text : [existing, text].flat();
  }
  const record: DownlinkRecord = {
    topic: options.kafkaTopic ?? '',
    partition: options.partition,
    offset: options.offset,
    key: options.key === undefined ? null : Buffer.from(options.key),
    value,
    headers,
    timestamp: String(Date.now()),
  };
  const results = router.route(record);
  const invalid = results.some((result) => result.kind === 'invalid');
  return {
    outcome: results.length === 0 ? 'unmatched' : invalid ? 'invalid' : 'mapped',
    messages: results.flatMap((r) =>
      r.kind === 'message' ? [messageShown(r.rule, r.message)] : [],
    ),
    errors: results.flatMap((r) =>
      r.kind === 'invalid' ? [{ rule: r.rule, error: r.error }] : [],
    ),
  };
}

function messageShown(rule: string, message: DownlinkMessage) {
  const { contentType, payloadFormatIndicator, responseTopic, correlationData, userProperties } =
    message.properties;
  return {
    rule,
    topic: message.topic,
    qos: message.qos,
    retain: message.retain,
    expiresAt: message.expiresAt === undefined ? null : new Date(message.expiresAt).toISOString(),
    properties: {
      ...(contentType !== undefined && { contentType }),
      ...(payloadFormatIndicator !== undefined && { payloadFormatIndicator }),
      ...(responseTopic !== undefined && { responseTopic }),
      ...(correlationData !== undefined && { correlationData: bytesShown(correlationData) }),
      ...(userProperties !== undefined && { userProperties }),
    },
    payload: bytesShown(message.payload),
  };
}

/** commander parser for `--qos`. */
export function parseQos(text: string): 0 | 1 | 2 {
  if (text === '0' || text === '1' || text === '2') return Number(text) as 0 | 1 | 2;
  throw new InvalidArgumentError('expected 0, 1 or 2');
}

/** commander parser for `--partition`. */
export function parsePartition(text: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  throw new InvalidArgumentError('expected a partition number');
}

/** commander parser for repeated `--user-property name=value` and `--header name=value`. */
export function collectNameValue(
  text: string,
  previous: Array<[string, string]>,
): Array<[string, string]> {
  const equals = text.indexOf('=');
  if (equals <= 0) throw new InvalidArgumentError('expected name=value');
  return [...previous, [text.slice(0, equals), text.slice(equals + 1)]];
}

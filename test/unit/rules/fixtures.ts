import { relative } from 'node:path';
import { AvroSchemas } from '../../../src/rules/codecs/avro.js';
import { MappingError } from '../../../src/rules/errors.js';
import type { DownlinkRouter } from '../../../src/rules/downlink-router.js';
import type { DownlinkRecord } from '../../../src/rules/downlink-types.js';
import { compileMappings } from '../../../src/rules/load.js';
import type { Mappings } from '../../../src/rules/load.js';
import { PayloadJson } from '../../../src/rules/payload-json.js';
import type { Router, Routing } from '../../../src/rules/router.js';
import type { TemplateScope } from '../../../src/rules/templates.js';
import type { RoutedRecord, UplinkPublish } from '../../../src/rules/types.js';

/** A publish with harmless defaults, for tests. */
export function publish(overrides: Partial<UplinkPublish> = {}): UplinkPublish {
  return {
    topic: 'devices/d1/telemetry',
    payload: Buffer.from('{"t":21.5}'),
    qos: 1,
    retain: false,
    clientId: 'client-1',
    username: undefined,
    userProperties: [],
    ...overrides,
  };
}

/** A Kafka record with harmless defaults, for tests. */
export function kafkaRecord(overrides: Partial<DownlinkRecord> = {}): DownlinkRecord {
  return {
    topic: 'iot.commands',
    partition: 0,
    offset: '42',
    key: Buffer.from('d1'),
    value: Buffer.from('{"cmd":"reboot"}'),
    headers: {},
    timestamp: '1700000000000',
    ...overrides,
  };
}

/** Joins lines into a YAML text; keeps positions in tests readable (line n is lines[n - 1]). */
export function yaml(...lines: string[]): string {
  return lines.join('\n') + '\n';
}

/** The records of a routing: those of the matching rules, or of the unmatched policy. */
export function recordsOf(routing: Routing): RoutedRecord[] {
  return routing.kind === 'rejected' ? [] : routing.records;
}

/** A template scope for `publish`, with `captures`. */
export function scopeOf(from: UplinkPublish, captures: Record<string, string> = {}): TemplateScope {
  return { publish: from, captures, json: new PayloadJson(from.payload) };
}

/**
 * A router for one mapping file `m.yaml` in folder `maps/`; `files` are the other files there
 * (`.avsc` schemas), by path relative to that folder.
 */
export function routerOf(text: string, files: Record<string, string> = {}): Router {
  return mappingsOf(text, files).uplink;
}

/** The downlink router of one mapping file `maps/m.yaml`, as `routerOf`. */
export function downlinkOf(text: string, files: Record<string, string> = {}): DownlinkRouter {
  return mappingsOf(text, files).downlink;
}

function mappingsOf(text: string, files: Record<string, string>): Mappings {
  const schemas = new AvroSchemas((path) => {
    const content = files[relative('maps', path)];
    if (content === undefined) {
      throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    }
    return content;
  });
  return compileMappings([{ file: 'maps/m.yaml', text }], schemas);
}

/** The mapping errors of one file `maps/m.yaml`, formatted. */
export function mappingErrors(text: string, files: Record<string, string> = {}): string[] {
  try {
    routerOf(text, files);
  } catch (error) {
    if (error instanceof MappingError) return error.message.split('\n');
    throw error;
  }
  return [];
}

/** The records of a publish that must map. */
export function mapped(routing: Routing): RoutedRecord[] {
  if (routing.kind !== 'mapped')
    throw new Error(`expected records, got ${JSON.stringify(routing)}`);
  return routing.records;
}

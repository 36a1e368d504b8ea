import type { UplinkPublish } from '../../../src/rules/types.js';

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

/** Joins lines into a YAML text; keeps positions in tests readable (line n is lines[n - 1]). */
export function yaml(...lines: string[]): string {
  return lines.join('\n') + '\n';
}

import { PayloadError } from './errors.js';
import type { Template, TemplateScope } from './templates.js';
import type { Partitioner, SourcePosition } from './types.js';

/** Kafka's limit on partition numbers (a signed 32-bit integer). */
export const MAX_PARTITION = 2 ** 31 - 1;

/** `partition:` of a rule. */
export type PartitionSpec =
  | { kind: 'hash' }
  | { kind: 'round-robin' }
  | { kind: 'fixed'; partition: number; position: SourcePosition }
  | { kind: 'template'; template: Template };

export interface ChosenPartition {
  partitioner: Partitioner;
  /** Undefined for `hash` and `round-robin` (the uplink picks the latter). */
  partition: number | undefined;
}

const HASH: ChosenPartition = { partitioner: 'hash', partition: undefined };
const ROUND_ROBIN: ChosenPartition = { partitioner: 'round-robin', partition: undefined };

/** The partition of one record; throws a PayloadError when a template renders no number. */
export function choosePartition(spec: PartitionSpec, scope: TemplateScope): ChosenPartition {
  switch (spec.kind) {
    case 'hash':
      return HASH;
    case 'round-robin':
      return ROUND_ROBIN;
    case 'fixed':
      return { partitioner: 'explicit', partition: spec.partition };
    case 'template': {
      const text = spec.template.render(scope);
      const partition = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
      if (!(partition <= MAX_PARTITION)) {
        throw new PayloadError(
          `partition "${spec.template.source}" is "${text}", not a partition number`,
        );
      }
      return { partitioner: 'explicit', partition };
    }
  }
}

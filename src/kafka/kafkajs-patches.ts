/**
 * Faster equivalents of two KafkaJS internals on the uplink's hot path (see produce-encoding.ts
 * and message-grouping.ts). They must be in place before KafkaJS loads the modules that use
 * them, so this module installs them when it is evaluated: it is the first import of the
 * entry points (cli.ts, bridge.ts), and it imports nothing of KafkaJS itself. Where KafkaJS was
 * loaded first, its own code runs: the same bytes, only slower.
 */
import { installLinearGrouping } from './message-grouping.js';
import { installFastProduceEncoding } from './produce-encoding.js';

export function installKafkajsPatches(): { produceEncoding: boolean; grouping: boolean } {
  return { produceEncoding: installFastProduceEncoding(), grouping: installLinearGrouping() };
}

installKafkajsPatches();

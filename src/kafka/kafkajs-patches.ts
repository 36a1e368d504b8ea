/**
 * Faster equivalents of three KafkaJS internals on the uplink's hot path (see produce-encoding.ts,
 * request-framing.ts and message-grouping.ts), its request queue's timer without Node 24's warning
 * (request-queue-timeout.ts), and the partitions a failed request spanning brokers stored all
 * the same (stored-partitions.ts). They must be in place before KafkaJS loads the modules that use
 * them, so this module installs them when it is evaluated: it is the first import of the
 * entry points (cli.ts, bridge.ts), and it imports nothing of KafkaJS itself. Where KafkaJS was
 * loaded first, its own code runs: the same bytes, only slower.
 */
import { installLinearGrouping } from './message-grouping.js';
import { installFastProduceEncoding } from './produce-encoding.js';
import { installRequestFraming } from './request-framing.js';
import { installRequestQueueTimeout } from './request-queue-timeout.js';
import { installStoredPartitions } from './stored-partitions.js';

export function installKafkajsPatches(): {
  produceEncoding: boolean;
  requestFraming: boolean;
  grouping: boolean;
  requestQueueTimeout: boolean;
  storedPartitions: boolean;
} {
  return {
    produceEncoding: installFastProduceEncoding(),
    requestFraming: installRequestFraming(),
    grouping: installLinearGrouping(),
    requestQueueTimeout: installRequestQueueTimeout(),
    storedPartitions: installStoredPartitions(),
  };
}

installKafkajsPatches();

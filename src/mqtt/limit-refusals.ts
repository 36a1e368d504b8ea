import type { Logger } from '../observability/logger.js';
import type { BridgeMetrics } from '../observability/metrics.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';

/** The options that bound what clients may make the bridge hold; each names its refusals. */
export type Limit =
  | 'mqtt.maxConnections'
  | 'mqtt.maxConnectionsPerAddress'
  | 'mqtt.maxConnectRate'
  | 'mqtt.maxSubscriptionsPerClient'
  | 'mqtt.maxTopicLevels'
  | 'mqtt.maxTopicLength'
  | 'mqtt.maxDelayedMessages'
  | 'mqtt.maxDelayedPerClient'
  | 'mqtt.maxPublishRate'
  | 'retained.maxMessages'
  | 'retained.maxBytes';

/**
 * Every refusal by a limit: counted (`bridge_mqtt_limit_refusals_total{limit}`) and logged at
 * most once a minute per limit, the lines left out counted in the next one.
 */
export class LimitRefusals {
  readonly #metrics: BridgeMetrics;
  readonly #log: RateLimitedLog;

  constructor(log: Logger, metrics: BridgeMetrics) {
    this.#metrics = metrics;
    this.#log = new RateLimitedLog(log);
  }

  refuse(limit: Limit, fields: Record<string, unknown>, what: string): void {
    this.#metrics.mqttLimitRefusals.inc({ limit });
    this.#log.warn(
      limit,
      { ...fields, limit },
      `${what} (refused by ${limit}; logged at most once a minute per limit)`,
    );
  }
}

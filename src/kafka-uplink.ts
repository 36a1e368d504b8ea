import type { ProducerPipeline } from './kafka/producer-pipeline.js';
import type { UplinkOutcome, UplinkSink } from './mqtt/uplink-sink.js';
import type { BridgeMetrics } from './observability/metrics.js';
import type { Router } from './rules/router.js';
import type { UplinkPublish } from './rules/types.js';

/** The uplink: the rules turn a publish into records, the pipeline produces them. */
export class KafkaUplink implements UplinkSink {
  readonly #router: Router;
  readonly #pipeline: ProducerPipeline;
  readonly #metrics: BridgeMetrics;

  constructor(router: Router, pipeline: ProducerPipeline, metrics: BridgeMetrics) {
    this.#router = router;
    this.#pipeline = pipeline;
    this.#metrics = metrics;
  }

  send(publish: UplinkPublish, onSettled: ((outcome: UplinkOutcome) => void) | undefined): void {
    const routed = this.#router.route(publish);
    if (routed.length === 0) {
      this.#metrics.mqttPublishesUnmapped.inc();
      onSettled?.({ kind: 'unmatched' });
      return;
    }
    this.#pipeline.enqueue(
      routed.map((entry) => entry.record),
      onSettled &&
        ((failure) => {
          onSettled(failure ? { kind: 'failed', ...failure } : { kind: 'stored' });
        }),
    );
  }
}

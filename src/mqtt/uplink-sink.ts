import type { UplinkPublish } from '../rules/types.js';

/** What became of a publish handed to the uplink. */
export type UplinkOutcome =
  /** Every record it maps to is acknowledged by Kafka (acks=all). */
  | { kind: 'stored' }
  /** No rule matched: nothing was sent to Kafka. */
  | { kind: 'unmatched' }
  /** Kafka refused it for good; the reason maps to an MQTT 5 reason code. */
  | {
      kind: 'failed';
      reasonCode: number;
      reason: string;
      /**
       * A decision a retransmission cannot change (invalid payload, rejected by the
       * unmatched policy, stored on the dead-letter topic): MQTT 3.1.1, which cannot be
       * told "no", gets a normal acknowledgement. Otherwise (Kafka unavailable or refusing)
       * a 3.1.1 client is disconnected and retransmits.
       */
      final?: boolean;
    };

/**
 * The broker's only view of Kafka. `onSettled` is called once, after Kafka
 * acknowledged every record (or failed them); undefined for fire-and-forget.
 */
export interface UplinkSink {
  send(publish: UplinkPublish, onSettled: ((outcome: UplinkOutcome) => void) | undefined): void;
  /** Called with true when the uplink cannot take more for now, and with false when it can again. */
  onCongestion(listener: (congested: boolean) => void): void;
}

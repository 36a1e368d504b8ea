import { ReasonCode } from '../mqtt/reason-codes.js';

/** A produce that Kafka refused for good, with the MQTT 5 reason code that says so. */
export interface ProduceFailure {
  reasonCode: number;
  reason: string;
}

/** Kafka error types (KafkaJS `error.type`) with a closer MQTT 5 reason code than 0x80. */
const REASON_BY_KAFKA_ERROR: Record<string, number> = {
  // PUBACK has no "packet too large": the topic's size limit is a quota
  MESSAGE_TOO_LARGE: ReasonCode.QuotaExceeded,
  RECORD_LIST_TOO_LARGE: ReasonCode.QuotaExceeded,
  TOPIC_AUTHORIZATION_FAILED: ReasonCode.NotAuthorized,
  CLUSTER_AUTHORIZATION_FAILED: ReasonCode.NotAuthorized,
  POLICY_VIOLATION: ReasonCode.ImplementationSpecificError,
};

export function produceFailureOf(error: unknown): ProduceFailure {
  const type =
    typeof error === 'object' && error !== null && 'type' in error && typeof error.type === 'string'
      ? error.type
      : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return {
    reasonCode:
      (type !== undefined ? REASON_BY_KAFKA_ERROR[type] : undefined) ?? ReasonCode.UnspecifiedError,
    reason: `Kafka refused the record: ${message}`,
  };
}

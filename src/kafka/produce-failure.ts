import { ReasonCode } from '../mqtt/reason-codes.js';

/** A produce that Kafka refused for good, with the MQTT 5 reason code that says so. */
export interface ProduceFailure {
  reasonCode: number;
  reason: string;
  /** Kafka did not answer in time (`kafka.ackTimeoutMs`): nothing was refused for good. */
  timedOut?: boolean;
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

/** Kafka error types that retrying does not cure: the publish is refused. */
const PERMANENT_KAFKA_ERRORS: ReadonlySet<string> = new Set([
  ...Object.keys(REASON_BY_KAFKA_ERROR),
  'UNKNOWN_TOPIC_OR_PARTITION',
  'INVALID_TOPIC_EXCEPTION',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_REQUIRED_ACKS',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  'UNSUPPORTED_COMPRESSION_TYPE',
]);

/** KafkaJS errors of an unreachable or unavailable cluster, worth retrying for as long as allowed. */
const TRANSIENT_ERROR_NAMES: ReadonlySet<string> = new Set([
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSTimeout',
  'KafkaJSLockTimeout',
]);

interface KafkaJsErrorShape {
  name?: unknown;
  type?: unknown;
  retriable?: unknown;
  cause?: unknown;
  originalError?: unknown;
}

/** The Kafka error type (e.g. MESSAGE_TOO_LARGE) of an error or of the error it wraps. */
function kafkaTypeOf(error: unknown): string | undefined {
  for (let current = error, depth = 0; depth < 4; depth++) {
    if (typeof current !== 'object' || current === null) return undefined;
    const shape = current as KafkaJsErrorShape;
    if (typeof shape.type === 'string') return shape.type;
    current = shape.cause ?? shape.originalError;
  }
  return undefined;
}

/**
 * Whether a failed produce may succeed later (Kafka unreachable, leader
 * moving, request timed out) rather than being refused for good (topic
 * missing, not authorized, record too large).
 */
export function isTransientProduceError(error: unknown): boolean {
  const type = kafkaTypeOf(error);
  if (type !== undefined && PERMANENT_KAFKA_ERRORS.has(type)) return false;
  if (typeof error !== 'object' || error === null) return false;
  const shape = error as KafkaJsErrorShape;
  return (
    (typeof shape.name === 'string' && TRANSIENT_ERROR_NAMES.has(shape.name)) ||
    shape.retriable === true
  );
}

/** The cause a failure is logged under (rate-limited per cause). */
export function produceErrorCause(error: unknown): string {
  return kafkaTypeOf(error) ?? (error instanceof Error ? error.name : 'unknown');
}

export function produceFailureOf(error: unknown): ProduceFailure {
  const type = kafkaTypeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  return {
    reasonCode:
      (type !== undefined ? REASON_BY_KAFKA_ERROR[type] : undefined) ??
      (type === 'UNKNOWN_TOPIC_OR_PARTITION'
        ? ReasonCode.ImplementationSpecificError
        : ReasonCode.UnspecifiedError),
    reason: `Kafka refused the record: ${message}`,
  };
}

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

/**
 * Errors of the idempotent producer's state (a broker restart can cause them): the producer
 * needs a new producer id before it can send again.
 */
const PRODUCER_STATE_ERRORS: ReadonlySet<string> = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'DUPLICATE_SEQUENCE_NUMBER',
  'INVALID_PRODUCER_EPOCH',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_ID_MAPPING',
]);

interface KafkaJsErrorShape {
  type?: unknown;
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
 * moving, request timed out, a broker restarted) rather than being refused
 * for good (topic missing, not authorized, record too large). Only the
 * known refusals are final: anything else is tried again, for at most
 * `kafka.ackTimeoutMs`.
 */
export function isTransientProduceError(error: unknown): boolean {
  const type = kafkaTypeOf(error);
  return type === undefined || !PERMANENT_KAFKA_ERRORS.has(type);
}

/** Whether the producer needs a new producer id (reconnect) before trying again. */
export function needsNewProducerId(error: unknown): boolean {
  const type = kafkaTypeOf(error);
  return type !== undefined && PRODUCER_STATE_ERRORS.has(type);
}

/**
 * Kafka says it has this batch already (its sequence numbers were written before): stored, as
 * the Java producer takes it. KafkaJS has moved its sequence numbers back all the same, so the
 * producer needs a new producer id before it sends again.
 */
export function isDuplicateSequence(error: unknown): boolean {
  return kafkaTypeOf(error) === 'DUPLICATE_SEQUENCE_NUMBER';
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

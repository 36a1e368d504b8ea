import { describe, expect, it } from 'vitest';
import {
  isTransientProduceError,
  needsNewProducerId,
  produceFailureOf,
} from '../../../src/kafka/produce-failure.js';

const kafkaError = (type: string): Error => Object.assign(new Error(type), { type });
const exhausted = (cause: Error): Error =>
  Object.assign(new Error(cause.message), { name: 'KafkaJSNumberOfRetriesExceeded', cause });

describe('produce failures', () => {
  it('treats only known refusals as final, also when KafkaJS wraps them', () => {
    expect(isTransientProduceError(kafkaError('MESSAGE_TOO_LARGE'))).toBe(false);
    expect(isTransientProduceError(exhausted(kafkaError('UNKNOWN_TOPIC_OR_PARTITION')))).toBe(
      false,
    );
    expect(isTransientProduceError(exhausted(kafkaError('NOT_LEADER_OR_FOLLOWER')))).toBe(true);
    expect(isTransientProduceError(kafkaError('OUT_OF_ORDER_SEQUENCE_NUMBER'))).toBe(true);
    expect(isTransientProduceError(new Error('The producer is disconnected'))).toBe(true);
  });

  it('asks for a new producer id after idempotent-producer state errors', () => {
    expect(needsNewProducerId(kafkaError('OUT_OF_ORDER_SEQUENCE_NUMBER'))).toBe(true);
    expect(needsNewProducerId(exhausted(kafkaError('UNKNOWN_PRODUCER_ID')))).toBe(true);
    expect(needsNewProducerId(kafkaError('NOT_LEADER_OR_FOLLOWER'))).toBe(false);
  });

  it('maps refusals to PUBACK reason codes', () => {
    expect(produceFailureOf(kafkaError('TOPIC_AUTHORIZATION_FAILED')).reasonCode).toBe(0x87);
    expect(produceFailureOf(kafkaError('MESSAGE_TOO_LARGE')).reasonCode).toBe(0x97);
    expect(produceFailureOf(exhausted(kafkaError('UNKNOWN_TOPIC_OR_PARTITION'))).reasonCode).toBe(
      0x83,
    );
  });
});

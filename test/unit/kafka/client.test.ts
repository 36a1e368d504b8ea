import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createKafka } from '../../../src/kafka/client.js';
import { createLogger } from '../../../src/observability/logger.js';
import { PLAINTEXT } from '../../../src/kafka/security.js';

function capturedKafka() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().trim().split('\n')) {
        lines.push(JSON.parse(line) as { level: number; msg: string });
      }
      done();
    },
  });
  const refusedBy: string[] = [];
  const kafka = createKafka(
    { brokers: ['127.0.0.1:9092'], clientId: 'test' },
    PLAINTEXT,
    createLogger({ level: 'info', pretty: false }, stream),
    (broker) => refusedBy.push(broker),
  );
  return { logger: kafka.logger(), lines, refusedBy };
}

describe('the KafkaJS client logs', () => {
  it('keeps requests KafkaJS retries out of the error log', () => {
    const { logger, lines } = capturedKafka();
    logger.namespace('Connection').error('Response Metadata(key: 3, version: 6)', {
      error: 'This server does not host this topic-partition',
    });
    expect(lines).toEqual([]);
  });

  it('leaves refused credentials to the bridge’s own line, and tells which broker refused', () => {
    const { logger, lines, refusedBy } = capturedKafka();
    logger
      .namespace('SASLSCRAMAuthenticator')
      .error('SASL SCRAM SHA512 authentication failed: invalid credentials', {
        broker: '127.0.0.1:9093',
      });
    expect(lines).toEqual([]);
    expect(refusedBy).toEqual(['127.0.0.1:9093']);
  });

  it('logs other errors once a minute each', () => {
    const { logger, lines } = capturedKafka();
    for (let i = 0; i < 3; i++) {
      logger.namespace('BrokerPool').error('Failed to connect to seed broker', { retryCount: i });
    }
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      [50, 'Failed to connect to seed broker'],
    ]);
  });
});

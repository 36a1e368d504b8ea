import type { Producer } from 'kafkajs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { connectProducer, KafkaConnectionState } from '../../../src/kafka/connection-state.js';

/** A producer whose connect() fails with the given errors, one per attempt, then succeeds. */
function producer(failures: Error[]) {
  const calls = { connect: 0, disconnect: 0 };
  const fake = {
    connect: () => {
      calls.connect++;
      const failure = failures.shift();
      return failure === undefined ? Promise.resolve() : Promise.reject(failure);
    },
    disconnect: () => {
      calls.disconnect++;
      return Promise.resolve();
    },
  };
  return { producer: fake as unknown as Producer, calls };
}

const config = (connectTimeoutMs: number) =>
  loadConfig({ env: { BRIDGE_KAFKA_CONNECT_TIMEOUT_MS: String(connectTimeoutMs) } });
const silent = pino({ level: 'silent' });
const refused = Object.assign(new Error('SASL SCRAM SHA512 authentication failed'), {
  name: 'KafkaJSSASLAuthenticationError',
});

describe('connectProducer', () => {
  it('keeps trying while Kafka refuses the bridge, past kafka.connectTimeoutMs, and says why', async () => {
    const { producer: fake, calls } = producer([refused, refused, refused]);
    const connection = new KafkaConnectionState();
    const problems: Array<string | undefined> = [];
    const started = Date.now();
    const connecting = connectProducer(fake, config(100), connection, silent, {
      accessRetryMs: 80,
      retryMs: 10,
    });
    const sampler = setInterval(() => problems.push(connection.problem), 20);
    await connecting;
    clearInterval(sampler);
    expect(calls.connect).toBe(4);
    expect(Date.now() - started).toBeGreaterThan(200); // beyond the 100 ms timeout
    expect(problems).toContain(
      'Kafka at 127.0.0.1:9092 refused the bridge: SASL SCRAM SHA512 authentication failed',
    );
  });

  it('takes a missing ACL (authorization failed) as a refusal too', async () => {
    const { producer: fake, calls } = producer([
      Object.assign(new Error('Cluster authorization failed'), {
        name: 'KafkaJSProtocolError',
        type: 'CLUSTER_AUTHORIZATION_FAILED',
      }),
    ]);
    const connection = new KafkaConnectionState();
    await connectProducer(fake, config(50), connection, silent, { accessRetryMs: 60 });
    expect(calls.connect).toBe(2);
  });

  it('pauses between attempts that fail at once, and gives up after kafka.connectTimeoutMs', async () => {
    const failures = Array.from(
      { length: 1000 },
      () => new Error('Connection error: ECONNREFUSED'),
    );
    const { producer: fake, calls } = producer(failures);
    await expect(
      connectProducer(fake, config(300), new KafkaConnectionState(), silent, { retryMs: 50 }),
    ).rejects.toThrow(
      /^cannot reach Kafka at 127\.0\.0\.1:9092 \(kafka\.brokers, env BRIDGE_KAFKA_BROKERS\)/,
    );
    expect(calls.connect).toBeLessThanOrEqual(7);
    expect(calls.disconnect).toBe(1);
  });

  it('says a refusal once, however KafkaJS words it on each attempt', async () => {
    const untrusted = (message: string) =>
      Object.assign(new Error(message), {
        name: 'KafkaJSConnectionError',
        code: 'SELF_SIGNED_CERT_IN_CHAIN',
        broker: '127.0.0.1:9093',
      });
    const { producer: fake } = producer([
      untrusted('Connection error: self-signed certificate in certificate chain'),
      untrusted(
        'Failed to connect to seed broker, trying another broker from the list: Connection error: self-signed certificate in certificate chain',
      ),
    ]);
    const lines: string[] = [];
    const log = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    await connectProducer(fake, config(100), new KafkaConnectionState(), log, {
      accessRetryMs: 20,
    });
    expect(lines.filter((line) => line.includes('refused the bridge'))).toHaveLength(1);
  });
});

/**
 * A bare KafkaJS producer process: the Kafka-side ceiling of the uplink (the records the bridge
 * would make, in batches of 1,000, nothing else), and the producer of the downlink scenarios.
 * Idempotent with acks=all, as the bridge's producer. Options: scripts/bench/peers/records.ts.
 */
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { readyThenGo, report } from '../child.js';
import { parseBareOptions, produceAll } from './records.js';

const options = parseBareOptions();
const kafka = new Kafka({ brokers: options.brokers, logLevel: logLevel.NOTHING });
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
await producer.send({ topic: options.topic, messages: [options.warmUp], acks: -1 });
await readyThenGo();
const result = await produceAll(options, (records) =>
  producer.send({
    topic: options.topic,
    messages: records,
    acks: -1,
    compression: CompressionTypes.None,
  }),
);
report(result);
await producer.disconnect();
process.exit(0);

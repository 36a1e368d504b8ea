/**
 * The direct peer: Aedes plus the KafkaJS glue a user writes by hand. Each PUBLISH becomes one
 * producer.send of the record the bridge would make; the publish is authorised (so a QoS 1
 * PUBACK leaves) only once Kafka acknowledged it, which is the bridge's guarantee. Aedes' own
 * persistence is its in-memory default.
 *
 *   node --import tsx scripts/bench/peers/aedes-glue.ts --port P --brokers B --topic T
 */
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { Aedes } from 'aedes';
import { Kafka, logLevel } from 'kafkajs';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    brokers: { type: 'string', default: '127.0.0.1:9092' },
    topic: { type: 'string', default: '' },
  },
});

const kafka = new Kafka({ brokers: values.brokers.split(','), logLevel: logLevel.NOTHING });
const producer = kafka.producer();
await producer.connect();

const broker = await Aedes.createBroker({
  authorizePublish: (client, packet, callback) => {
    const clientId = client?.id ?? '';
    producer
      .send({
        topic: values.topic,
        acks: -1,
        messages: [
          {
            key: clientId,
            value: packet.payload,
            headers: { 'mqtt-topic': packet.topic, 'mqtt-client-id': clientId },
          },
        ],
      })
      .then(
        () => {
          callback(null);
        },
        (error: unknown) => {
          callback(error instanceof Error ? error : new Error(String(error)));
        },
      );
  },
});
const server = createServer(broker.handle);
server.listen(Number(values.port), '127.0.0.1');

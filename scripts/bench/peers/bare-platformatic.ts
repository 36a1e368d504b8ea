/**
 * A bare @platformatic/kafka producer process (1.x: 2.x needs Node 22): the same records in the
 * same batches as scripts/bench/peers/bare-kafkajs.ts, from another client library.
 * Idempotent with acks=all, as the bridge's producer.
 */
import { ProduceAcks, Producer, stringSerializers } from '@platformatic/kafka';
import { readyThenGo, report } from '../child.js';
import { parseBareOptions, produceAll, type BareRecord } from './records.js';

const options = parseBareOptions();
const producer = new Producer({
  clientId: 'bench-bare-platformatic',
  bootstrapBrokers: options.brokers,
  idempotent: true,
  acks: ProduceAcks.ALL,
  serializers: { ...stringSerializers, value: (value?: Buffer) => value },
});
const send = (records: BareRecord[]) =>
  producer.send({
    messages: records.map((record) => ({ topic: options.topic, ...record })),
  });
await send([options.warmUp]);
await readyThenGo();
report(await produceAll(options, send));
await producer.close();
process.exit(0);

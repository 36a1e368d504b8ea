/**
 * `npm run consume -- TOPIC [--from-beginning]` — prints every record of TOPIC as one JSON line:
 *
 *   {"topic","partition","offset","timestamp","key","headers","value"}
 *
 * key and value are UTF-8 strings when they are valid UTF-8, otherwise `{"base64": "..."}`;
 * header values are UTF-8 strings (an array for a repeated header). Uses a random consumer group
 * (no offsets committed) on the Kafka the bridge's variables name: BRIDGE_KAFKA_BROKERS (default
 * 127.0.0.1:9092) and, for a secured one, BRIDGE_KAFKA_SSL_* and BRIDGE_KAFKA_SASL_*.
 * Ctrl-C disconnects cleanly.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type IHeaders } from 'kafkajs';
import { loadConfig } from '../src/config/load.js';
import { loadKafkaSecurity } from '../src/kafka/security.js';

const USAGE = 'usage: npm run consume -- TOPIC [--from-beginning]';

type Bytes = string | { base64: string } | null;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function bytes(value: Buffer | string | null | undefined): Bytes {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  try {
    return utf8.decode(value);
  } catch {
    return { base64: value.toString('base64') };
  }
}

function headerStrings(headers: IHeaders | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.map((item) => item.toString()) : value.toString();
  }
  return out;
}

function parseArgs(argv: string[]): { topic: string; fromBeginning: boolean } {
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log(USAGE);
    process.exit(0);
  }
  const unknown = argv.filter((arg) => arg.startsWith('-') && arg !== '--from-beginning');
  const positional = argv.filter((arg) => !arg.startsWith('-'));
  const topic = positional[0];
  if (unknown.length > 0 || positional.length !== 1 || topic === undefined) {
    console.error(USAGE);
    process.exit(2);
  }
  return { topic, fromBeginning: argv.includes('--from-beginning') };
}

async function main(): Promise<void> {
  const { topic, fromBeginning } = parseArgs(process.argv.slice(2));
  const { kafka: options } = loadConfig();
  const { brokers } = options;
  const { ssl, sasl } = await loadKafkaSecurity(options);
  const kafka = new Kafka({
    clientId: 'bridge-consume',
    brokers,
    logLevel: logLevel.ERROR,
    ...(ssl && { ssl }),
    ...(sasl && { sasl }),
  });
  const consumer = kafka.consumer({
    groupId: `bridge-consume-${randomUUID()}`,
    allowAutoTopicCreation: false,
  });

  let closing: Promise<void> | undefined;
  const shutdown = (code: number): Promise<void> => {
    closing ??= consumer.disconnect().then(
      () => process.exit(code),
      () => process.exit(code === 0 ? 1 : code),
    );
    return closing;
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (closing) process.exit(130); // second Ctrl-C: don't wait any longer
      void shutdown(0);
    });
  }
  // `npm run consume -- t | head`: stop quietly when the reader goes away.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    void shutdown(error.code === 'EPIPE' ? 0 : 1);
  });
  consumer.on(consumer.events.CRASH, (event) => {
    if (!event.payload.restart) {
      console.error(`consumer crashed: ${event.payload.error.message}`);
      void shutdown(1);
    }
  });

  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning });
  console.error(
    `consuming ${topic} from ${brokers.join(',')}${fromBeginning ? ' from the beginning' : ''} (Ctrl-C to stop)`,
  );
  await consumer.run({
    autoCommit: false,
    eachMessage: ({ topic: recordTopic, partition, message }) => {
      const line = JSON.stringify({
        topic: recordTopic,
        partition,
        offset: message.offset,
        timestamp: Number(message.timestamp),
        key: bytes(message.key),
        headers: headerStrings(message.headers),
        value: bytes(message.value),
      });
      process.stdout.write(`${line}\n`);
      return Promise.resolve();
    },
  });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});

/**
 * Compression interop with Kafka's own (Java) client: for gzip, snappy, lz4 and zstd, record
 * batches a KafkaJS producer compressed with src/kafka/compression.ts are read back by Kafka's
 * console consumer, and batches Kafka's console producer compressed are read by a KafkaJS
 * consumer with the registered codecs. Kafka itself decompresses each produced batch to
 * validate it, and keeps the producer's compression (compression.type=producer), so the
 * readers get the very bytes the other client wrote.
 *
 * The console tools are in the kafka-tools jar, which the broker's jars (.kafka/lib-<version>)
 * do not include: it is fetched once from Maven Central into .kafka/tools-<version>.
 */
import kafkajs, { type CompressionTypes } from 'kafkajs';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  kafkaCompression,
  registerCompressionCodecs,
  type KafkaCodec,
} from '../../src/kafka/compression.js';
import {
  connectedProducer,
  createTopic,
  kafkaBrokers,
  readRecords,
  uniqueId,
} from '../support/kafka-helpers.js';
import { kafkaToolsClasspath, runTool } from '../support/kafka-tools.js';

// kafkajs is CommonJS, and Node's ESM loader does not see CompressionCodecs among its named exports
const { CompressionCodecs } = kafkajs;

const CODECS = ['gzip', 'snappy', 'lz4', 'zstd'] as const;
type Codec = (typeof CODECS)[number];
type CodecType = Exclude<CompressionTypes, CompressionTypes.None>;

/** Small records, batched together, and one large one that spans many chunks / blocks. */
const SMALL_RECORDS = 40;
const SEPARATOR = '|';

function recordsOf(codec: Codec): Array<{ key: string; value: string }> {
  const records = Array.from({ length: SMALL_RECORDS }, (_, index) => ({
    key: `${codec}-${index}`,
    value: JSON.stringify({ codec, index, celsius: 20 + index / 10, device: `dev${index % 3}` }),
  }));
  const large = Array.from({ length: 6_000 }, (_, index) => `{"n":${index},"v":"${codec}"}`);
  records.push({ key: `${codec}-large`, value: large.join(',') }); // ~120 KB
  return records;
}

interface CodecSpy {
  compressed: number;
  bytesIn: number;
  bytesOut: number;
  decompressed: number;
}

/** Counts what KafkaJS has the codec of `type` do, until the test finishes. */
function spyOnCodec(type: CodecType): CodecSpy {
  const codecs = CompressionCodecs as Record<CodecType, () => KafkaCodec>;
  const original = codecs[type];
  const spy: CodecSpy = { compressed: 0, bytesIn: 0, bytesOut: 0, decompressed: 0 };
  codecs[type] = () => {
    const codec = original();
    return {
      async compress(encoder) {
        const out = await codec.compress(encoder);
        spy.compressed += 1;
        spy.bytesIn += encoder.buffer.length;
        spy.bytesOut += out.length;
        return out;
      },
      async decompress(buffer) {
        spy.decompressed += 1;
        return codec.decompress(buffer);
      },
    };
  };
  onTestFinished(() => {
    codecs[type] = original;
  });
  return spy;
}

function topicConfig(): { configEntries: Array<{ name: string; value: string }>; exact: true } {
  // the broker keeps each batch as its producer compressed it
  return { exact: true, configEntries: [{ name: 'compression.type', value: 'producer' }] };
}

describe('compression interop with Kafka’s Java client', () => {
  let classpath: string;

  beforeAll(async () => {
    registerCompressionCodecs();
    classpath = await kafkaToolsClasspath();
  });

  it('Kafka’s console consumer reads what a KafkaJS producer compressed with each codec', async () => {
    const run = uniqueId();
    const producer = await connectedProducer({ idempotent: true });
    const spies = new Map<Codec, CodecSpy>();
    for (const codec of CODECS) {
      const topic = await createTopic(`compress-js-${run}-${codec}`, 1, topicConfig());
      const compression = kafkaCompression(codec);
      const spy = spyOnCodec(compression as CodecType);
      spies.set(codec, spy);
      // one batch of all records, as the bridge's pipeline sends them
      await producer.send({ topic, acks: -1, compression, messages: recordsOf(codec) });
    }
    for (const [codec, spy] of spies) {
      expect(spy.compressed, codec).toBe(1);
      expect(spy.bytesOut, codec).toBeLessThan(spy.bytesIn / 4);
    }

    const expected = new Map(CODECS.flatMap((codec) => recordsOf(codec).map((r) => [r.key, r])));
    const output = await runTool(classpath, 'org.apache.kafka.tools.consumer.ConsoleConsumer', [
      '--bootstrap-server',
      kafkaBrokers().join(','),
      '--include',
      `compress-js-${run}-.*`,
      '--from-beginning',
      '--max-messages',
      String(expected.size),
      '--timeout-ms',
      '30000',
      '--formatter-property',
      'print.key=true',
      '--formatter-property',
      `key.separator=${SEPARATOR}`,
    ]);
    const read = new Map<string, string>();
    for (const line of output.split('\n')) {
      const at = line.indexOf(SEPARATOR);
      if (at > 0) read.set(line.slice(0, at), line.slice(at + 1));
    }
    expect([...read.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [key, { value }] of expected) expect(read.get(key), key).toBe(value);
  });

  it('a KafkaJS consumer reads what Kafka’s console producer compressed with each codec', async () => {
    const run = uniqueId();
    const topics = new Map<Codec, string>();
    for (const codec of CODECS) {
      topics.set(codec, await createTopic(`compress-java-${run}-${codec}`, 1, topicConfig()));
    }
    // the four JVMs at once: their start-up is most of the time
    await Promise.all(
      CODECS.map((codec) =>
        runTool(
          classpath,
          'org.apache.kafka.tools.ConsoleProducer',
          [
            '--bootstrap-server',
            kafkaBrokers().join(','),
            '--topic',
            topics.get(codec) ?? '',
            '--compression-codec',
            codec,
            '--command-property',
            'linger.ms=50',
            '--reader-property',
            'parse.key=true',
            '--reader-property',
            `key.separator=${SEPARATOR}`,
          ],
          recordsOf(codec)
            .map(({ key, value }) => `${key}${SEPARATOR}${value}\n`)
            .join(''),
        ),
      ),
    );

    for (const codec of CODECS) {
      const spy = spyOnCodec(kafkaCompression(codec) as CodecType);
      const expected = recordsOf(codec);
      const records = await readRecords(topics.get(codec) ?? '', expected.length, {
        timeoutMs: 20_000,
      });
      expect(spy.decompressed, codec).toBeGreaterThan(0);
      expect(
        records.map((record) => ({
          key: record.key?.toString(),
          value: record.value?.toString(),
        })),
        codec,
      ).toEqual(expected);
    }
  });
});

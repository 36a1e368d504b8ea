import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  kafkaCompression,
  registerCompressionCodecs,
  type KafkaCodec,
} from '../../../src/kafka/compression.js';

// kafkajs is CommonJS, and Node's ESM loader does not see these two among its named exports
const { CompressionCodecs, CompressionTypes: Types } = kafkajs;

/*
 * The JAVA_FRAMES below were written by Kafka 4.4.0's own client code (the jars of
 * scripts/kafka/pom.xml), as a producer compresses a record batch's records:
 *
 *   ByteBufferOutputStream bytes = new ByteBufferOutputStream(1024);
 *   OutputStream out = Compression.snappy().build()   // .lz4(), .zstd(): the defaults
 *       .wrapForOutput(bytes, RecordBatch.MAGIC_VALUE_V2);
 *   out.write(input); out.close();
 *
 * for SMALL, an empty input and LARGE (100 000 bytes, byte i = i % 251: several snappy chunks
 * and lz4 blocks), run with `java -cp '.kafka/lib-4.4.0/*' Gen.java`, base64.
 */
const SMALL = Buffer.from("Kafka's own client compressed this.");
const LARGE = Buffer.from(Array.from({ length: 100_000 }, (_, index) => index % 251));

const XERIAL_HEADER = Buffer.from('82534e41505059000000000100000001', 'hex');

/** Written by Kafka 4.4's own compression (org.apache.kafka.common.compress, see above). */
const JAVA_FRAMES = {
  snappy: {
    small: 'glNOQVBQWQAAAAABAAAAAQAAACUjiEthZmthJ3Mgb3duIGNsaWVudCBjb21wcmVzc2VkIHRoaXMu',
    empty: 'glNOQVBQWQAAAAABAAAAAQ==',
    large: [
      'glNOQVBQWQAAAAABAAAAAQAABvmAgALw/QABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJico',
      'KSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlq',
      'a2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKjpKWmp6ipqqus',
      'ra6vsLGys7S1tre4ubq7vL2+v8DBwsPExcbHyMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u',
      '7/Dx8vP09fb3+Pn6AAEC/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA/vsA',
      '/vsA/vsA/vsA/vsA/vsA/vsA7vsACfsAAAb5gIAC8P2Ki4yNjo+QkZKTlJWWl5iZmpucnZ6foKGio6Slpqeoqaqr',
      'rK2ur7CxsrO0tba3uLm6u7y9vr/AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY2drb3N3e3+Dh4uPk5ebn6Onq6+zt',
      '7u/w8fLz9PX29/j5+gABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0',
      'NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2',
      'd3h5ent8fX5/gIGCg4SFhoeIiYqLjP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77AP77',
      'AP77AP77AP77AP77AP77AP77AP77AP77AO77AAn7AAAG+YCAAvD9GRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIz',
      'NDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1',
      'dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGio6SlpqeoqaqrrK2ur7CxsrO0tba3',
      'uLm6u7y9vr/AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY2drb3N3e3+Dh4uPk5ebn6Onq6+zt7u/w8fLz9PX29/j5',
      '+gABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhv++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wDu+wAJ+wAAAUegDfD9o6SlpqeoqaqrrK2ur7CxsrO0tba3',
      'uLm6u7y9vr/AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY2drb3N3e3+Dh4uPk5ebn6Onq6+zt7u/w8fLz9PX29/j5',
      '+gABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9A',
      'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGC',
      'g4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKjpKX++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD+',
      '+wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wD++wCG+wA=',
    ].join(''),
  },
  lz4: {
    small: 'BCJNGGBAgiMAAIBLYWZrYSdzIG93biBjbGllbnQgY29tcHJlc3NlZCB0aGlzLgAAAAA=',
    empty: 'BCJNGGBAggAAAAA=',
    large: [
      'BCJNGGBAggUCAAD/7AABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0',
      'NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2',
      'd3h5ent8fX5/gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKjpKWmp6ipqqusra6vsLGys7S1tre4',
      'ubq7vL2+v8DBwsPExcbHyMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6',
      '+wD/////////////////////////////////////////////////////////////////////////////////////',
      '////////////////////////////////////////////////////////////////////////////////////////',
      '////////////////////////////////////////////////////////////////////////////////////////',
      '///////////////////////////////////////////////////////////////////////////////sUBQVFhcY',
      'jAEAAP/sGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNU',
      'VVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWW',
      'l5iZmpucnZ6foKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr/AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY',
      '2drb3N3e3+Dh4uPk5ebn6Onq6+zt7u/w8fLz9PX29/j5+gABAgMEBQYHCAkKCwwNDg8QERITFBUWFxj7AP//////',
      '////////////////////////////////////////////////////////////////////////////////////////',
      '////////////////////////////////////////////////////////////////////////////////////E1Bh',
      'YmNkZQAAAAA=',
    ].join(''),
  },
  zstd: {
    small: 'KLUv/QBYGAEAS2Fma2EncyBvd24gY2xpZW50IGNvbXByZXNzZWQgdGhpcy4BAAA=',
    empty: 'KLUv/SAAAQAA',
    large: [
      'KLUv/QBYLAgAtA8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2',
      'Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4',
      'eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6foKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6',
      'u7y9vr/AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY2drb3N3e3+Dh4uPk5ebn6Onq6+zt7u/w8fLz9PX29/j5+gEA',
      'e9FCf26kAQAA',
    ].join(''),
  },
};
/** snappy-java's Snappy.compress(SMALL): raw snappy, no framing (as librdkafka writes it). */
const JAVA_RAW_SNAPPY = 'I4hLYWZrYSdzIG93biBjbGllbnQgY29tcHJlc3NlZCB0aGlzLg==';

const require = createRequire(import.meta.url);

interface KafkaJsEncoder {
  buffer: Buffer;
}
/** KafkaJS's own record batch encoding and decoding, which call the registered codecs. */
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (batch: {
    compression: number;
    records: KafkaJsEncoder[];
  }) => Promise<KafkaJsEncoder>;
};
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (record: {
  offsetDelta: number;
  key: Buffer;
  value: Buffer;
  headers?: Record<string, Buffer>;
}) => KafkaJsEncoder;
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (
  decoder: unknown,
) => Promise<{ records: Array<{ key: Buffer; value: Buffer; headers: Record<string, Buffer> }> }>;
const KafkaJsDecoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;

const CODECS = ['snappy', 'lz4', 'zstd'] as const;
type CodecName = (typeof CODECS)[number];

function codecOf(name: CodecName): KafkaCodec {
  // as KafkaJS does it: the factory in CompressionCodecs, called when a batch needs it
  return CompressionCodecs[kafkaCompression(name) as 2 | 3 | 4]() as KafkaCodec;
}

async function compress(name: CodecName, input: Buffer): Promise<Buffer> {
  return codecOf(name).compress({ buffer: input });
}

async function decompress(name: CodecName, input: Buffer): Promise<Buffer> {
  return codecOf(name).decompress(input);
}

function base64(text: string): Buffer {
  return Buffer.from(text, 'base64');
}

describe('kafkaCompression', () => {
  it('maps each kafka.compression value to its KafkaJS compression type', () => {
    expect(kafkaCompression('none')).toBe(Types.None);
    expect(kafkaCompression('gzip')).toBe(Types.GZIP);
    expect(kafkaCompression('snappy')).toBe(Types.Snappy);
    expect(kafkaCompression('lz4')).toBe(Types.LZ4);
    expect(kafkaCompression('zstd')).toBe(Types.ZSTD);
  });

  it('registers the codec it names with KafkaJS', async () => {
    for (const name of CODECS) {
      const codec = CompressionCodecs[kafkaCompression(name) as 2 | 3 | 4]() as KafkaCodec;
      const out = await codec.decompress(await codec.compress({ buffer: SMALL }));
      expect(out.equals(SMALL)).toBe(true);
    }
  });

  it('registerCompressionCodecs registers every decoder, and is idempotent', () => {
    registerCompressionCodecs();
    registerCompressionCodecs();
    for (const type of [Types.Snappy, Types.LZ4, Types.ZSTD]) {
      const codec = CompressionCodecs[type as 2 | 3 | 4]() as KafkaCodec;
      expect(typeof codec.decompress).toBe('function');
    }
  });
});

describe.each(CODECS)('%s codec', (name) => {
  it.each([
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([7])],
    ['small', SMALL],
    ['100 000 bytes, compressible', LARGE],
    ['1 MiB random (incompressible)', randomBytes(1024 * 1024)],
    ['3 MiB text', Buffer.from('{"celsius":21.5,"device":"dev1"}\n'.repeat(100_000))],
  ])('round trip: %s', async (_label, input) => {
    const compressed = await compress(name, input);
    expect(Buffer.isBuffer(compressed)).toBe(true);
    const output = await decompress(name, compressed);
    expect(Buffer.isBuffer(output)).toBe(true);
    expect(output.length).toBe(input.length);
    expect(output.equals(input)).toBe(true);
  });

  it('compresses compressible data', async () => {
    const input = Buffer.from('{"celsius":21.5,"device":"dev1"}\n'.repeat(1000));
    expect((await compress(name, input)).length).toBeLessThan(input.length / 4);
  });

  it.each(['small', 'empty', 'large'] as const)(
    'decodes what Kafka’s Java client wrote: %s',
    async (kind) => {
      const expected = { small: SMALL, empty: Buffer.alloc(0), large: LARGE }[kind];
      const output = await decompress(name, base64(JAVA_FRAMES[name][kind]));
      expect(output.equals(expected)).toBe(true);
    },
  );

  it('rejects a truncated frame', async () => {
    const frame = await compress(name, LARGE);
    await expect(decompress(name, frame.subarray(0, frame.length - 9))).rejects.toThrow();
  });

  it('survives a KafkaJS record batch encoded and decoded with it', async () => {
    const records = Array.from({ length: 500 }, (_, index) =>
      Record({
        offsetDelta: index,
        key: Buffer.from(`dev${index % 7}`),
        value: Buffer.from(`{"celsius":${index / 10}}`),
        headers: { 'mqtt-topic': Buffer.from(`devices/dev${index % 7}/telemetry/temp`) },
      }),
    );
    const type = kafkaCompression(name);
    const encoded = await RecordBatch({ compression: type, records });
    const plain = await RecordBatch({ compression: Types.None, records });
    expect(encoded.buffer.length).toBeLessThan(plain.buffer.length / 2);
    const decoded = await decodeRecordBatch(new KafkaJsDecoder(encoded.buffer));
    expect(decoded.records).toHaveLength(500);
    expect(decoded.records[499]?.value.toString()).toBe('{"celsius":49.9}');
    expect(decoded.records[3]?.key.toString()).toBe('dev3');
    expect(decoded.records[3]?.headers['mqtt-topic']?.toString()).toBe(
      'devices/dev3/telemetry/temp',
    );
  });
});

describe('snappy wire format', () => {
  it('writes xerial framing as the Java client does: header, then length-prefixed 32 KiB chunks', async () => {
    const frame = await compress('snappy', LARGE);
    expect(frame.subarray(0, 16).equals(XERIAL_HEADER)).toBe(true);
    const lengths: number[] = [];
    for (let offset = 16; offset < frame.length;) {
      const length = frame.readInt32BE(offset);
      lengths.push(length);
      offset += 4 + length;
      expect(offset).toBeLessThanOrEqual(frame.length);
    }
    expect(lengths).toHaveLength(Math.ceil(LARGE.length / 32_768));
    // byte for byte what Kafka's Java client writes for the same input
    expect(frame.equals(base64(JAVA_FRAMES.snappy.large))).toBe(true);
  });

  it('writes the bare header for empty input', async () => {
    expect((await compress('snappy', Buffer.alloc(0))).equals(XERIAL_HEADER)).toBe(true);
  });

  it('reads raw (unframed) snappy, as librdkafka and kafkajs-snappy write it', async () => {
    expect((await decompress('snappy', base64(JAVA_RAW_SNAPPY))).equals(SMALL)).toBe(true);
  });

  it('reads xerial streams concatenated one after the other', async () => {
    const twice = Buffer.concat([
      base64(JAVA_FRAMES.snappy.small),
      base64(JAVA_FRAMES.snappy.large),
    ]);
    expect((await decompress('snappy', twice)).equals(Buffer.concat([SMALL, LARGE]))).toBe(true);
  });

  it('rejects a chunk longer than what is left', async () => {
    const frame = Buffer.concat([XERIAL_HEADER, Buffer.from([0, 0, 1, 0]), Buffer.alloc(10)]);
    await expect(decompress('snappy', frame)).rejects.toThrow(/chunk of 256 bytes, 10 left/);
  });
});

describe('lz4 wire format', () => {
  it('writes an LZ4 frame with independent blocks and no checksums, as Kafka reads it', async () => {
    const frame = await compress('lz4', LARGE);
    expect(frame.readUInt32LE(0)).toBe(0x184d2204); // magic
    // FLG 0x60: version 01, block independence; no block/content checksum, no content size
    expect(frame[4]).toBe(0x60);
    // BD: block maximum size 4 (64 KiB), 5 (256 KiB), 6 (1 MiB) or 7 (4 MiB), all of which
    // Kafka reads (its Java client writes 64 KiB blocks; lz4_flex picks by input size)
    const bd = frame.readUInt8(5);
    expect(bd & 0x8f).toBe(0);
    expect(bd >> 4).toBeGreaterThanOrEqual(4);
    expect(frame.readUInt32LE(frame.length - 4)).toBe(0); // end mark
    expect(base64(JAVA_FRAMES.lz4.large)[4]).toBe(0x60);
  });
});

describe('zstd wire format', () => {
  it('writes a standard zstd frame', async () => {
    const frame = await compress('zstd', LARGE);
    expect(frame.readUInt32LE(0)).toBe(0xfd2fb528);
  });

  it('reads frames one after the other', async () => {
    const twice = Buffer.concat([base64(JAVA_FRAMES.zstd.large), base64(JAVA_FRAMES.zstd.small)]);
    expect((await decompress('zstd', twice)).equals(Buffer.concat([LARGE, SMALL]))).toBe(true);
  });

  it('rejects data that is not zstd', async () => {
    await expect(decompress('zstd', Buffer.from('not zstd at all'))).rejects.toThrow();
  });
});

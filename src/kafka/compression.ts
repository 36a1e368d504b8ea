/**
 * Kafka record batch compression for KafkaJS: gzip is built into KafkaJS; snappy, lz4 and zstd
 * are codecs registered here, in the wire formats Kafka's own (Java) client writes and reads:
 *
 * - snappy: xerial framing (magic `\x82SNAPPY\0`, version 1, compatible version 1, then
 *   big-endian length-prefixed raw snappy chunks of at most 32 KiB of input), as the Java
 *   client's SnappyOutputStream writes it. Decoding takes xerial-framed data (also several
 *   streams one after the other) and raw, unframed snappy (what librdkafka and kafkajs-snappy
 *   write).
 * - lz4: the LZ4 frame format with independent blocks (Kafka decompresses each block on its
 *   own, so linked blocks would not do), no checksums, no content size; blocks of 64 KiB to
 *   4 MiB, all of which Kafka reads.
 * - zstd: standard zstd frames, level 3 (Kafka's default); decoding also takes frames that do
 *   not state their content size (the Java client's streaming writer never does).
 *
 * The native codec packages are loaded when a codec is first used, so a bridge without
 * compression never loads them.
 */
import { createRequire } from 'node:module';
import kafkajs, { type CompressionTypes } from 'kafkajs';
import type * as Snappy from 'snappy';
import type * as Lz4 from 'lz4-napi';
import type * as Zstd from '@toondepauw/node-zstd';
import type { BridgeConfig } from '../config/load.js';

// kafkajs is CommonJS, and Node's ESM loader does not see these two among its named exports
const { CompressionCodecs, CompressionTypes: Types } = kafkajs;

export type CompressionName = BridgeConfig['kafka']['compression'];

/** What KafkaJS calls: compress gets its Encoder (the records' bytes in `buffer`). */
export interface KafkaCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

const require = createRequire(import.meta.url);

const TYPES: Record<CompressionName, CompressionTypes> = {
  none: Types.None,
  gzip: Types.GZIP,
  snappy: Types.Snappy,
  lz4: Types.LZ4,
  zstd: Types.ZSTD,
};

// ---------------------------------------------------------------------------------------------
// snappy (xerial framing)
// ---------------------------------------------------------------------------------------------

/** `\x82SNAPPY\0`, then version 1 and minimum compatible version 1 (int32, big-endian). */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER = Buffer.concat([XERIAL_MAGIC, Buffer.from([0, 0, 0, 1, 0, 0, 0, 1])]);
/** Input bytes per chunk: the Java client's SnappyOutputStream default block size. */
const XERIAL_CHUNK = 32 * 1024;

function isXerialHeaderAt(buffer: Buffer, offset: number): boolean {
  return (
    buffer.length - offset >= XERIAL_HEADER.length &&
    buffer.subarray(offset, offset + XERIAL_MAGIC.length).equals(XERIAL_MAGIC)
  );
}

async function snappyUncompress(snappy: typeof Snappy, chunk: Buffer): Promise<Buffer> {
  const out = await snappy.uncompress(chunk, { asBuffer: true });
  return typeof out === 'string' ? Buffer.from(out) : out;
}

function snappyCodec(snappy: typeof Snappy): KafkaCodec {
  return {
    async compress({ buffer }) {
      const chunks: Array<Promise<Buffer>> = [];
      for (let offset = 0; offset < buffer.length; offset += XERIAL_CHUNK) {
        chunks.push(snappy.compress(buffer.subarray(offset, offset + XERIAL_CHUNK)));
      }
      const parts: Buffer[] = [XERIAL_HEADER];
      for (const compressed of await Promise.all(chunks)) {
        const length = Buffer.alloc(4);
        length.writeInt32BE(compressed.length);
        parts.push(length, compressed);
      }
      return Buffer.concat(parts);
    },

    async decompress(buffer) {
      if (!isXerialHeaderAt(buffer, 0)) return snappyUncompress(snappy, buffer);
      const chunks: Array<Promise<Buffer>> = [];
      let offset = 0;
      while (offset < buffer.length) {
        if (isXerialHeaderAt(buffer, offset)) {
          // the first stream's header, or that of a stream concatenated to the previous one
          offset += XERIAL_HEADER.length;
          continue;
        }
        if (buffer.length - offset < 4) throw new Error('snappy (xerial): truncated chunk length');
        const length = buffer.readInt32BE(offset);
        offset += 4;
        if (length < 0 || length > buffer.length - offset)
          throw new Error(
            `snappy (xerial): chunk of ${length} bytes, ${buffer.length - offset} left`,
          );
        chunks.push(snappyUncompress(snappy, buffer.subarray(offset, offset + length)));
        offset += length;
      }
      return Buffer.concat(await Promise.all(chunks));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// lz4 (frame format)
// ---------------------------------------------------------------------------------------------

function lz4Codec(lz4: typeof Lz4): KafkaCodec {
  return {
    async compress({ buffer }) {
      // lz4_flex's default frame: version 1, independent blocks, no checksums, no content size
      return lz4.compressFrame(buffer);
    },
    async decompress(buffer) {
      return lz4.decompressFrame(buffer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// zstd
// ---------------------------------------------------------------------------------------------

/** Kafka's default zstd level (compression.zstd.level). */
const ZSTD_LEVEL = 3;

function zstdCodec(zstd: typeof Zstd): KafkaCodec {
  const encoder = new zstd.Encoder(ZSTD_LEVEL);
  const decoder = new zstd.Decoder();
  return {
    async compress({ buffer }) {
      return encoder.encode(buffer);
    },
    async decompress(buffer) {
      // a streaming decoder: frames need not state their content size, and may follow each other
      return decoder.decode(buffer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

type RegisteredType = CompressionTypes.Snappy | CompressionTypes.LZ4 | CompressionTypes.ZSTD;

interface CodecPackage {
  codec: CompressionName;
  /** The npm package the codec loads. */
  name: string;
  make: (module: never) => KafkaCodec;
}

const PACKAGES: Record<RegisteredType, CodecPackage> = {
  [Types.Snappy]: { codec: 'snappy', name: 'snappy', make: snappyCodec },
  [Types.LZ4]: { codec: 'lz4', name: 'lz4-napi', make: lz4Codec },
  [Types.ZSTD]: { codec: 'zstd', name: '@toondepauw/node-zstd', make: zstdCodec },
};

const loaded = new Map<RegisteredType, KafkaCodec>();

/** The codec of `type`, its native package loaded now if it was not yet. */
export function loadCodec(type: RegisteredType): KafkaCodec {
  let codec = loaded.get(type);
  if (codec === undefined) {
    const { codec: label, name, make } = PACKAGES[type];
    let module: unknown;
    try {
      module = require(name);
    } catch (error) {
      throw new Error(`Kafka compression ${label}: cannot load the codec package ${name}`, {
        cause: error,
      });
    }
    codec = make(module as never);
    loaded.set(type, codec);
  }
  return codec;
}

function register(type: RegisteredType): void {
  CompressionCodecs[type] = () => loadCodec(type);
}

/**
 * Registers the snappy, lz4 and zstd codecs with KafkaJS (process-wide), so that consumers
 * read record batches whichever codec their producer used. A codec's package is loaded when
 * the first batch needs it. Idempotent.
 */
export function registerCompressionCodecs(): void {
  register(Types.Snappy);
  register(Types.LZ4);
  register(Types.ZSTD);
}

/**
 * The KafkaJS compression type for `kafka.compression`, to pass to `send`/`sendBatch`. Snappy,
 * lz4 and zstd are registered with KafkaJS and their package loaded now, so a codec that
 * cannot load fails here (at start) rather than at the first produce.
 */
export function kafkaCompression(name: CompressionName): CompressionTypes {
  const type = TYPES[name];
  if (type === Types.None || type === Types.GZIP) return type;
  loadCodec(type);
  register(type);
  return type;
}

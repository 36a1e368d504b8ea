/**
 * A faster encoding of KafkaJS's uncompressed Produce requests, byte for byte the same.
 *
 * KafkaJS (2.2.4, its last release) encodes each record into an Encoder of its own (a zeroed
 * 512-byte buffer), each header into another, each varint through `Buffer.from([...])` and each
 * varlong through BigInt arithmetic, then copies all of them into the batch, the batch into the
 * request, growing buffers by doubling. On the uplink's hot path that was about a third of the
 * bridge's CPU and most of its garbage. Here the sizes are computed first and the request is
 * written into one buffer of its exact size.
 *
 * Installed over KafkaJS's Produce v3 request module (v4 to v7 are v3 with another version
 * number), before any of them is loaded: anything this encoder does not know exactly (a
 * compression codec, a value of another type than string, Buffer or null, a timestamp delta
 * beyond 2^50 ms) is left to KafkaJS's own encoder.
 */
import { createRequire } from 'node:module';
import { isPatchedKafkajs, replaceKafkajsModule } from './kafkajs-module.js';
import { REQUEST_HEADROOM, requestFramingInstalled, type EncodedBody } from './request-framing.js';

const require = createRequire(import.meta.url);

const MODULES = {
  v3: 'kafkajs/src/protocol/requests/produce/v3/request.js',
  later: [4, 5, 6, 7].map(
    (version) => `kafkajs/src/protocol/requests/produce/v${version}/request.js`,
  ),
  encoder: 'kafkajs/src/protocol/encoder.js',
  long: 'kafkajs/src/utils/long.js',
};

/** KafkaJS's Long (BigInt inside). */
interface Long {
  getHighBits(): number;
  getLowBits(): number;
}
interface LongStatic {
  fromValue(value: unknown): Long;
  fromInt(value: number): Long;
}

/**
 * KafkaJS's Encoder, as far as this module uses it: a buffer and the bytes written (from
 * `start`, the room left for the request framing, when there is one).
 */
type Encoder = EncodedBody;
type EncoderClass = new (initialSize?: number) => Encoder;

type Value = string | Buffer | null | undefined;

/** A message as the producer hands it to the request (see partition-lane.ts toMessage). */
export interface ProduceMessage {
  key?: Value;
  value?: Value;
  headers?: Record<string, unknown> | null | undefined;
  timestamp?: string | number | undefined;
}

export interface ProduceRequestArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null | undefined;
  producerId?: unknown;
  producerEpoch?: number | undefined;
  compression?: number | undefined;
  topicData: Array<{
    topic: string;
    partitions: Array<{ partition: number; firstSequence?: number; messages: ProduceMessage[] }>;
  }>;
}

export interface ProduceRequest {
  apiKey: number;
  apiVersion: number;
  apiName: string;
  expectResponse: () => boolean;
  encode: () => Promise<Encoder>;
}

type RequestFactory = (args: ProduceRequestArgs) => ProduceRequest;

let installed: boolean | undefined;

/**
 * Puts the fast encoding in place of KafkaJS's (once). False when it cannot be: another
 * KafkaJS version, or its Produce request modules were loaded already (they would keep the
 * original); KafkaJS's own encoding is then used, which is only slower.
 */
export function installFastProduceEncoding(): boolean {
  if (installed !== undefined) return installed;
  // v4 to v7 take v3's factory when they load
  installed =
    isPatchedKafkajs() &&
    replaceKafkajsModule(MODULES.v3, MODULES.later, (original) =>
      fastProduceRequest(original as RequestFactory),
    );
  return installed;
}

/** KafkaJS's Produce v3 request factory, with uncompressed requests encoded here. */
export function fastProduceRequest(original: RequestFactory): RequestFactory {
  return (args) => {
    const request = original(args);
    if ((args.compression ?? 0) !== 0) return request;
    return {
      ...request,
      encode: async () => encodeProduceRequest(args) ?? request.encode(),
    };
  };
}

let kafkajsParts: { Encoder: EncoderClass; Long: LongStatic } | undefined;

function parts(): NonNullable<typeof kafkajsParts> {
  kafkajsParts ??= {
    Encoder: require(MODULES.encoder) as EncoderClass,
    Long: require(MODULES.long) as LongStatic,
  };
  return kafkajsParts;
}

/** Largest timestamp delta (ms) handled here; KafkaJS encodes larger ones. */
const MAX_DELTA = 2 ** 50;

interface MeasuredPartition {
  partition: number;
  firstSequence: number;
  firstTimestamp: Long;
  maxTimestamp: Long;
  messages: readonly ProduceMessage[];
  /** Per record: its timestamp delta and its body's size (what follows its length). */
  deltas: number[];
  bodySizes: number[];
  recordsSize: number;
}

/** Bytes of a RecordBatch (v2) besides its records, from FirstOffset to the record count. */
const BATCH_OVERHEAD = 8 + 4 + 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;

/**
 * The request's bytes (without KafkaJS's request header), or undefined when it holds
 * something only KafkaJS's encoder handles.
 */
export function encodeProduceRequest(args: ProduceRequestArgs): Encoder | undefined {
  const { Encoder, Long } = parts();
  const transactionalId = args.transactionalId ?? null;
  const producerId = Long.fromValue(args.producerId ?? Long.fromInt(-1));
  const producerEpoch = args.producerEpoch ?? 0;
  let size = stringSize(transactionalId) + 2 + 4 + 4;
  const topics: Array<{ topic: string; partitions: MeasuredPartition[] }> = [];
  for (const { topic, partitions } of args.topicData) {
    size += stringSize(topic) + 4;
    const measuredPartitions: MeasuredPartition[] = [];
    for (const data of partitions) {
      const measured = measurePartition(data, Long);
      if (measured === undefined) return undefined;
      measuredPartitions.push(measured);
      size += 4 + 4 + BATCH_OVERHEAD + measured.recordsSize;
    }
    topics.push({ topic, partitions: measuredPartitions });
  }

  // room for the request's header in front, where the framing writes it instead of copying
  const headroom = requestFramingInstalled() ? REQUEST_HEADROOM : 0;
  const buffer = Buffer.allocUnsafe(headroom + size);
  let offset = writeString(buffer, headroom, transactionalId);
  offset = buffer.writeInt16BE(args.acks, offset);
  offset = buffer.writeInt32BE(args.timeout, offset);
  offset = buffer.writeInt32BE(topics.length, offset);
  const attributes = transactionalId ? 16 : 0;
  for (const { topic, partitions } of topics) {
    offset = writeString(buffer, offset, topic);
    offset = buffer.writeInt32BE(partitions.length, offset);
    for (const partition of partitions) {
      offset = writePartition(buffer, offset, partition, {
        attributes,
        producerId,
        producerEpoch,
      });
    }
  }
  const encoder = new Encoder(0);
  encoder.buf = buffer;
  encoder.offset = offset;
  if (headroom > 0) encoder.start = headroom;
  return encoder;
}

/** As KafkaJS's v3 partitionsEncoder and Record: undefined when something is not plain. */
function measurePartition(
  data: ProduceRequestArgs['topicData'][number]['partitions'][number],
  Long: LongStatic,
): MeasuredPartition | undefined {
  const { messages } = data;
  const dateNow = Date.now();
  // KafkaJS sorts the timestamps as they are (strings: lexicographically) and takes the ends
  const timestamps = messages
    .map((message) => message.timestamp)
    .filter((timestamp) => timestamp != null)
    .sort();
  const sorted = timestamps.length === 0 ? [dateNow] : timestamps;
  const first = sorted[0] as string | number;
  const max = sorted[sorted.length - 1] as string | number;
  const firstNumber = Number(first);
  const deltas: number[] = [];
  const bodySizes: number[] = [];
  let recordsSize = 0;
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index] as ProduceMessage;
    const delta = Number(message.timestamp || dateNow) - firstNumber;
    if (!Number.isSafeInteger(delta) || Math.abs(delta) > MAX_DELTA) return undefined;
    const keySize = valueSize(message.key);
    const valueBytes = valueSize(message.value);
    const headersSize = measureHeaders(message.headers);
    if (keySize === undefined || valueBytes === undefined || headersSize === undefined) {
      return undefined;
    }
    const bodySize =
      1 +
      varLongSize(delta) +
      varIntSize(index) +
      bytesSize(keySize) +
      bytesSize(valueBytes) +
      headersSize;
    recordsSize += varIntSize(bodySize) + bodySize;
    deltas.push(delta);
    bodySizes.push(bodySize);
  }
  return {
    partition: data.partition,
    firstSequence: data.firstSequence ?? 0,
    firstTimestamp: Long.fromValue(first),
    maxTimestamp: Long.fromValue(max),
    messages,
    deltas,
    bodySizes,
    recordsSize,
  };
}

/**
 * Bytes of a record's headers with their count; undefined for what KafkaJS measures otherwise
 * (it measures a value with Buffer.byteLength: null or a number throws there).
 */
function measureHeaders(headers: ProduceMessage['headers']): number | undefined {
  if (headers === undefined) return 1;
  if (headers === null || typeof headers !== 'object') return undefined;
  let size = 0;
  let count = 0;
  // for…in over own names is Object.keys's order, without an array per record
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const item = headers[name];
    const nameSize = Buffer.byteLength(name);
    if (Array.isArray(item)) {
      for (const part of item as unknown[]) {
        const partSize = headerValueSize(part);
        if (partSize === undefined) return undefined;
        size += varIntSize(nameSize) + nameSize + varIntSize(partSize) + partSize;
        count++;
      }
    } else {
      const partSize = headerValueSize(item);
      if (partSize === undefined) return undefined;
      size += varIntSize(nameSize) + nameSize + varIntSize(partSize) + partSize;
      count++;
    }
  }
  return size + varIntSize(count);
}

function headerValueSize(value: unknown): number | undefined {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (Buffer.isBuffer(value)) return value.length;
  return undefined;
}

/** Writes a record's headers as measureHeaders measured them. */
function writeHeaders(buffer: Buffer, start: number, headers: ProduceMessage['headers']): number {
  if (headers === undefined || headers === null) return writeVarInt(buffer, start, 0);
  let count = 0;
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const item = headers[name];
    count += Array.isArray(item) ? item.length : 1;
  }
  let offset = writeVarInt(buffer, start, count);
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const item = headers[name] as string | Buffer | Array<string | Buffer>;
    const nameSize = Buffer.byteLength(name);
    if (!Array.isArray(item)) {
      offset = writeHeader(buffer, offset, name, nameSize, item);
      continue;
    }
    for (const part of item) offset = writeHeader(buffer, offset, name, nameSize, part);
  }
  return offset;
}

function writeHeader(
  buffer: Buffer,
  start: number,
  name: string,
  nameSize: number,
  value: string | Buffer,
): number {
  const offset = writeBytes(buffer, start, name, nameSize);
  return writeBytes(buffer, offset, value, headerValueSize(value) as number);
}

function writePartition(
  buffer: Buffer,
  start: number,
  partition: MeasuredPartition,
  batch: { attributes: number; producerId: Long; producerEpoch: number },
): number {
  const batchLength = BATCH_OVERHEAD - 8 - 4 + partition.recordsSize;
  let offset = buffer.writeInt32BE(partition.partition, start);
  // the record set's size, then FirstOffset 0 and the batch's length
  offset = buffer.writeInt32BE(8 + 4 + batchLength, offset);
  offset = buffer.writeInt32BE(0, offset);
  offset = buffer.writeInt32BE(0, offset);
  offset = buffer.writeInt32BE(batchLength, offset);
  offset = buffer.writeInt32BE(0, offset); // partition leader epoch
  offset = buffer.writeInt8(2, offset); // magic
  const crcAt = offset;
  offset += 4;
  const bodyStart = offset;
  offset = buffer.writeInt16BE(batch.attributes, offset);
  offset = buffer.writeInt32BE(partition.messages.length - 1, offset); // last offset delta
  offset = writeLong(buffer, offset, partition.firstTimestamp);
  offset = writeLong(buffer, offset, partition.maxTimestamp);
  offset = writeLong(buffer, offset, batch.producerId);
  offset = buffer.writeInt16BE(batch.producerEpoch, offset);
  offset = buffer.writeInt32BE(partition.firstSequence, offset);
  offset = buffer.writeInt32BE(partition.messages.length, offset);
  const { messages, deltas, bodySizes } = partition;
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index] as ProduceMessage;
    const { key, value } = message;
    offset = writeVarInt(buffer, offset, bodySizes[index] as number);
    buffer[offset++] = 0; // attributes
    offset = writeVarLong(buffer, offset, deltas[index] as number);
    offset = writeVarInt(buffer, offset, index);
    offset = writeBytes(buffer, offset, key, valueSize(key) as number);
    offset = writeBytes(buffer, offset, value, valueSize(value) as number);
    offset = writeHeaders(buffer, offset, message.headers);
  }
  buffer.writeUInt32BE(crc32c(buffer, bodyStart, offset), crcAt);
  return offset;
}

/** Bytes of a value (UTF-8 for a string); -1 for null; undefined for what KafkaJS would convert. */
function valueSize(value: unknown): number | undefined {
  if (value === null || value === undefined) return -1;
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (Buffer.isBuffer(value)) return value.length;
  return undefined;
}

function bytesSize(size: number): number {
  return size < 0 ? 1 : varIntSize(size) + size;
}

/**
 * Strings up to this many characters that are ASCII (as many UTF-8 bytes as characters) are
 * written a character at a time: header names and values, keys. Cheaper than a call into
 * Buffer#write for a few bytes.
 */
const SHORT_ASCII = 48;

function writeBytes(buffer: Buffer, start: number, value: Value, size: number): number {
  if (value === null || value === undefined) return writeVarInt(buffer, start, -1);
  const offset = writeVarInt(buffer, start, size);
  if (typeof value !== 'string') value.copy(buffer, offset);
  else if (size === value.length && size <= SHORT_ASCII) {
    for (let i = 0; i < size; i++) buffer[offset + i] = value.charCodeAt(i);
  } else buffer.write(value, offset, size, 'utf8');
  return offset + size;
}

function stringSize(value: string | null): number {
  return value === null ? 2 : 2 + Buffer.byteLength(value);
}

function writeString(buffer: Buffer, start: number, value: string | null): number {
  if (value === null) return buffer.writeInt16BE(-1, start);
  const size = Buffer.byteLength(value);
  const offset = buffer.writeInt16BE(size, start);
  buffer.write(value, offset, size, 'utf8');
  return offset + size;
}

function writeLong(buffer: Buffer, start: number, value: Long): number {
  const offset = buffer.writeInt32BE(value.getHighBits(), start);
  return buffer.writeInt32BE(value.getLowBits(), offset);
}

/** Zigzag varint of a 32-bit integer, as KafkaJS's Encoder.sizeOfVarInt. */
export function varIntSize(value: number): number {
  let encoded = (value << 1) ^ (value >> 31);
  let bytes = 1;
  while ((encoded & 0xffffff80) !== 0) {
    bytes++;
    encoded >>>= 7;
  }
  return bytes;
}

function writeVarInt(buffer: Buffer, start: number, value: number): number {
  let encoded = (value << 1) ^ (value >> 31);
  let offset = start;
  while ((encoded & 0xffffff80) !== 0) {
    buffer[offset++] = (encoded & 0x7f) | 0x80;
    encoded >>>= 7;
  }
  buffer[offset++] = encoded & 0x7f;
  return offset;
}

/** Zigzag varlong of a safe integer (|value| ≤ 2^50). */
function zigzag64(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

function varLongSize(value: number): number {
  let encoded = zigzag64(value);
  let bytes = 1;
  while (encoded >= 0x80) {
    bytes++;
    encoded = Math.floor(encoded / 128);
  }
  return bytes;
}

function writeVarLong(buffer: Buffer, start: number, value: number): number {
  let encoded = zigzag64(value);
  let offset = start;
  while (encoded >= 0x80) {
    buffer[offset++] = (encoded % 128) | 0x80;
    encoded = Math.floor(encoded / 128);
  }
  buffer[offset++] = encoded;
  return offset;
}

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) tables for eight bytes at a time. */
const CRC_TABLES = ((): Int32Array => {
  const tables = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    tables[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let table = 1; table < 8; table++) {
      const previous = tables[(table - 1) * 256 + n] as number;
      tables[table * 256 + n] = (previous >>> 8) ^ (tables[previous & 0xff] as number);
    }
  }
  return tables;
})();

/** CRC-32C of `buffer[start, end)`, unsigned (KafkaJS computes it a byte at a time). */
export function crc32c(buffer: Buffer, start: number, end: number): number {
  const t = CRC_TABLES;
  let crc = -1;
  let i = start;
  for (; end - i >= 8; i += 8) {
    const low =
      crc ^
      ((buffer[i] as number) |
        ((buffer[i + 1] as number) << 8) |
        ((buffer[i + 2] as number) << 16) |
        ((buffer[i + 3] as number) << 24));
    crc =
      (t[1792 + (low & 0xff)] as number) ^
      (t[1536 + ((low >>> 8) & 0xff)] as number) ^
      (t[1280 + ((low >>> 16) & 0xff)] as number) ^
      (t[1024 + (low >>> 24)] as number) ^
      (t[768 + (buffer[i + 4] as number)] as number) ^
      (t[512 + (buffer[i + 5] as number)] as number) ^
      (t[256 + (buffer[i + 6] as number)] as number) ^
      (t[buffer[i + 7] as number] as number);
  }
  for (; i < end; i++) crc = (t[(crc ^ (buffer[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

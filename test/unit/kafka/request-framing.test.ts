import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  frameRequest,
  installRequestFraming,
  REQUEST_HEADROOM,
  requestFramingInstalled,
  type EncodedBody,
  type RequestToFrame,
} from '../../../src/kafka/request-framing.js';
import { encodeProduceRequest } from '../../../src/kafka/produce-encoding.js';

const require = createRequire(import.meta.url);
const requestPath = require.resolve('kafkajs/src/protocol/request.js');
type Framing = (input: RequestToFrame) => Promise<{ buffer: Buffer }>;
const Encoder = require('kafkajs/src/protocol/encoder.js') as new () => EncodedBody & {
  writeBuffer(value: Buffer): unknown;
};

/** KafkaJS's own framing, read from its file again (the cached module may be the new one). */
function kafkajsFraming(): Framing {
  const cached = require.cache[requestPath];
  Reflect.deleteProperty(require.cache, requestPath);
  try {
    return require(requestPath) as Framing;
  } finally {
    if (cached) require.cache[requestPath] = cached;
  }
}

/** A body as KafkaJS encodes one, or with room in front as the fast Produce encoding leaves. */
function body(bytes: Buffer, headroom: number): EncodedBody {
  if (headroom === 0) {
    const encoder = new Encoder();
    encoder.writeBuffer(bytes);
    return encoder;
  }
  const buf = Buffer.alloc(headroom + bytes.length, 0xaa);
  bytes.copy(buf, headroom);
  return { buf, offset: buf.length, start: headroom };
}

const frame = (
  framing: Framing,
  encoded: EncodedBody,
  clientId: string | null,
): Promise<{ buffer: Buffer }> =>
  framing({
    correlationId: 0x01020304,
    clientId,
    request: { apiKey: 0, apiVersion: 7, encode: () => Promise.resolve(encoded) },
  });

describe('request framing', () => {
  const bodies = [0, 1, 600, 70_000].map((n) =>
    Buffer.from(Array.from({ length: n }, (_, i) => i % 256)),
  );
  const clientIds = ['mqtt-kafka-bridge', 'brücke-📡', '', null, 'c'.repeat(300)];

  it('frames requests as KafkaJS does, with or without room in front of the body', async () => {
    const original = kafkajsFraming();
    for (const bytes of bodies) {
      for (const clientId of clientIds) {
        const expected = (await frame(original, body(bytes, 0), clientId)).buffer;
        for (const headroom of [0, 10, REQUEST_HEADROOM]) {
          const framed = (await frame(frameRequest, body(bytes, headroom), clientId)).buffer;
          expect(framed.equals(expected), `${bytes.length} ${clientId} ${headroom}`).toBe(true);
        }
      }
    }
  });

  it('writes the header into the room left in front of the body instead of copying it', async () => {
    const encoded = body(Buffer.alloc(1_000, 7), REQUEST_HEADROOM);
    const framed = (await frame(frameRequest, encoded, 'mqtt-kafka-bridge')).buffer;
    expect(framed.buffer).toBe(encoded.buf.buffer);
    // a client id longer than the room: copied once into a frame of its own
    const long = (await frame(frameRequest, encoded, 'c'.repeat(300))).buffer;
    expect(long.buffer).not.toBe(encoded.buf.buffer);
  });

  it('is installed over KafkaJS request module before its connection module loads', () => {
    expect(installRequestFraming()).toBe(true);
    expect(requestFramingInstalled()).toBe(true);
    expect(require(requestPath)).toBe(frameRequest);
    expect(installRequestFraming()).toBe(true); // once
  });

  it('frames a fast-encoded Produce request in place once installed', async () => {
    expect(installRequestFraming()).toBe(true);
    const encoded = encodeProduceRequest({
      acks: -1,
      timeout: 30_000,
      topicData: [
        {
          topic: 'telemetry',
          partitions: [{ partition: 0, messages: [{ key: 'd1', value: Buffer.alloc(256, 1) }] }],
        },
      ],
    });
    expect(encoded?.start).toBe(REQUEST_HEADROOM);
    const produce = encoded as EncodedBody;
    const framed = (await frame(frameRequest, produce, 'mqtt-kafka-bridge')).buffer;
    expect(framed.buffer).toBe(produce.buf.buffer);
    const bodyBytes = Buffer.from(produce.buf.subarray(REQUEST_HEADROOM, produce.offset));
    const expected = (await frame(kafkajsFraming(), body(bodyBytes, 0), 'mqtt-kafka-bridge'))
      .buffer;
    expect(framed.equals(expected)).toBe(true);
  });
});

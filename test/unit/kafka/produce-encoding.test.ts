import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  encodeProduceRequest,
  fastProduceRequest,
  installFastProduceEncoding,
  type ProduceMessage,
  type ProduceRequest,
  type ProduceRequestArgs,
} from '../../../src/kafka/produce-encoding.js';

const require = createRequire(import.meta.url);
const Long = require('kafkajs/src/utils/long.js') as { fromValue(value: unknown): unknown };
const v3Path = require.resolve('kafkajs/src/protocol/requests/produce/v3/request.js');

/** The v3 factory KafkaJS uses now. */
function kafkajsFactory(): (args: ProduceRequestArgs) => ProduceRequest {
  return require(v3Path) as (args: ProduceRequestArgs) => ProduceRequest;
}

/** The original factory, read from its file again (the cached module may be the fast one). */
function originalFactory(): (args: ProduceRequestArgs) => ProduceRequest {
  const cached = require.cache[v3Path];
  Reflect.deleteProperty(require.cache, v3Path);
  try {
    return require(v3Path) as (args: ProduceRequestArgs) => ProduceRequest;
  } finally {
    if (cached) require.cache[v3Path] = cached;
  }
}

async function bytesOf(request: ProduceRequest): Promise<Buffer> {
  const encoder = await request.encode();
  return Buffer.from(encoder.buf.subarray(encoder.start ?? 0, encoder.offset));
}

/** A seeded generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

// ASCII up to 48 characters is written a character at a time, longer or other text by Buffer#write
const TEXTS = [
  '',
  'a',
  'device-17',
  'häßlich',
  '𝄞 clef',
  'x'.repeat(200),
  '数据/温度',
  'y'.repeat(48),
  'z'.repeat(49),
  '\ud800x',
];

function generatedArgs(seed: number): ProduceRequestArgs {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const bytes = (length: number): Buffer =>
    Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));
  const text = (): string => pick(TEXTS);
  const value = (): string | Buffer | null | undefined =>
    pick([
      () => bytes(Math.floor(next() * 40)),
      () => bytes(pick([127, 128, 300, 8191, 8192, 20_000])),
      text,
      () => null,
      () => undefined,
    ])();
  const base = 1_700_000_000_000 + Math.floor(next() * 1e6);
  const message = (): ProduceMessage => {
    const headers: Record<string, unknown> = {};
    const count = Math.floor(next() * 4);
    for (let index = 0; index < count; index++) {
      headers[`${text()}${index}`] =
        next() < 0.3 ? [text(), bytes(5), text()] : next() < 0.5 ? bytes(3) : text();
    }
    return {
      key: pick([() => text(), () => null, () => bytes(8)])(),
      value: value(),
      ...(next() < 0.9 && { headers }),
      ...(next() < 0.9 && {
        timestamp: pick([
          () => String(base + Math.floor(next() * 5000) - 2500),
          () => base + Math.floor(next() * 100),
          // shorter strings sort first as text: KafkaJS's first timestamp, whatever it means
          () => String(Math.floor(next() * 100_000)),
        ])(),
      }),
    };
  };
  return {
    acks: pick([-1, 1, 0]),
    timeout: 30_000,
    transactionalId: pick([null, undefined, 'tx-1']),
    producerId: pick([undefined, Long.fromValue(4711), Long.fromValue('9007199254740993')]),
    producerEpoch: pick([undefined, 0, 3]),
    compression: pick([undefined, 0]),
    topicData: Array.from({ length: 1 + Math.floor(next() * 2) }, () => ({
      topic: pick(['bench', 'iot.readings', 'ä-topic']),
      partitions: Array.from({ length: 1 + Math.floor(next() * 3) }, (_, partition) => ({
        partition,
        ...(next() < 0.8 && { firstSequence: Math.floor(next() * 100_000) }),
        messages: Array.from({ length: pick([0, 1, 2, 5, 70, 200]) }, message),
      })),
    })),
  };
}

describe('fast Produce request encoding', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('writes the same bytes as KafkaJS for many generated requests', async () => {
    const original = originalFactory();
    const fast = fastProduceRequest(original);
    vi.spyOn(Date, 'now').mockReturnValue(1_700_000_123_456);
    for (let seed = 1; seed <= 300; seed++) {
      const args = generatedArgs(seed);
      expect(encodeProduceRequest(args), `seed ${seed}`).toBeDefined();
      const expected = await bytesOf(original(args));
      const actual = await bytesOf(fast(args));
      expect(actual.equals(expected), `seed ${seed}`).toBe(true);
    }
  }, 30_000); // 2.4–3.6 s alone on two cores: the 5 s default is too close when files run in parallel

  it('leaves to KafkaJS what it does not encode itself, with the same outcome', async () => {
    const original = originalFactory();
    const fast = fastProduceRequest(original);
    const cases: ProduceMessage[] = [
      { key: 'k', value: Buffer.from('v'), headers: { n: 42 as unknown as string } },
      { key: 'k', value: Buffer.from('v'), timestamp: 'not a number' },
      { key: 7 as unknown as string, value: Buffer.from('v'), timestamp: '1' },
      { key: 'k', value: Buffer.from('v'), headers: null },
    ];
    for (const message of cases) {
      const args: ProduceRequestArgs = {
        acks: -1,
        timeout: 1000,
        topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [message] }] }],
      };
      expect(encodeProduceRequest(args)).toBeUndefined();
      const expected = await bytesOf(original(args)).catch((error: unknown) => error);
      const actual = await bytesOf(fast(args)).catch((error: unknown) => error);
      expect(actual).toEqual(expected);
    }
  });

  it('leaves compressed requests to KafkaJS', () => {
    const original = originalFactory();
    const args: ProduceRequestArgs = { acks: -1, timeout: 1000, compression: 1, topicData: [] };
    const request = original(args);
    expect(fastProduceRequest(() => request)(args)).toBe(request);
  });

  it('is installed over KafkaJS Produce v3 to v7 once', async () => {
    expect(installFastProduceEncoding()).toBe(true);
    expect(installFastProduceEncoding()).toBe(true);
    const produce = require('kafkajs/src/protocol/requests/produce/index.js') as {
      protocol(which: { version: number }): (args: ProduceRequestArgs) => {
        request: ProduceRequest;
      };
    };
    const args = generatedArgs(7);
    vi.spyOn(Date, 'now').mockReturnValue(1_700_000_123_456);
    const expected = await bytesOf(originalFactory()(args));
    for (const version of [3, 4, 5, 6, 7]) {
      const { request } = produce.protocol({ version })(args);
      expect(request.apiVersion).toBe(version);
      expect((await bytesOf(request)).equals(expected)).toBe(true);
    }
    expect(kafkajsFactory()).not.toBe(originalFactory());
  });
});

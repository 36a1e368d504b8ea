/**
 * A PUBLISH encoder for the packets most deliveries are: no properties (MQTT 3.1 / 3.1.1, or
 * MQTT 5 with none to send) and a Buffer payload. It writes the bytes mqtt-packet would, straight
 * into a buffer the connection gathers a tick's writes in: no packet accumulator, no intermediate
 * buffers, one copy of the payload. Anything else goes through mqtt-packet.
 */
import type { IPublishPacket } from 'mqtt-packet';

/** A PUBLISH the encoder takes: its payload is bytes, its properties (if any) are empty. */
export type PlainPublish = IPublishPacket & { payload: Buffer };

/** Whether `packet` can be written by {@link writePlainPublish}. */
export function isPlainPublish(packet: IPublishPacket): packet is PlainPublish {
  if (typeof packet.payload === 'string' || packet.topic === '') return false;
  if (packet.qos > 0 && packet.messageId === undefined) return false;
  const properties = packet.properties;
  if (properties === undefined) return true;
  for (const name in properties) {
    if ((properties as Record<string, unknown>)[name] !== undefined) return false;
  }
  return true;
}

/** The sizes of a plain PUBLISH: its Remaining Length and the whole packet's. */
export interface PublishSize {
  topicBytes: number;
  remaining: number;
  total: number;
}

export function plainPublishSize(packet: PlainPublish, v5: boolean): PublishSize {
  const topicBytes = Buffer.byteLength(packet.topic);
  const remaining =
    2 + topicBytes + (packet.qos > 0 ? 2 : 0) + (v5 ? 1 : 0) + packet.payload.length;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  return { topicBytes, remaining, total: 1 + lengthBytes + remaining };
}

/**
 * Writes `packet` at `at` (the caller made room for `size.total` bytes); returns the offset
 * after it. DUP is set only for QoS 1/2 [MQTT-3.3.1-2]; MQTT 5 gets a property length of 0.
 */
export function writePlainPublish(
  target: Buffer,
  at: number,
  packet: PlainPublish,
  size: PublishSize,
  v5: boolean,
): number {
  const { qos } = packet;
  let offset = at;
  target[offset++] = 0x30 | (packet.dup && qos > 0 ? 8 : 0) | (qos << 1) | (packet.retain ? 1 : 0);
  let rest = size.remaining;
  while (rest >= 128) {
    target[offset++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  target[offset++] = rest;
  const { topic } = packet;
  const { topicBytes } = size;
  target[offset++] = topicBytes >>> 8;
  target[offset++] = topicBytes & 0xff;
  // one byte per character: latin1 writes it without a UTF-8 encoder
  offset += target.write(
    topic,
    offset,
    topicBytes,
    topicBytes === topic.length ? 'latin1' : 'utf8',
  );
  if (qos > 0) {
    const id = packet.messageId as number;
    target[offset++] = id >>> 8;
    target[offset++] = id & 0xff;
  }
  if (v5) target[offset++] = 0;
  return offset + packet.payload.copy(target, offset);
}

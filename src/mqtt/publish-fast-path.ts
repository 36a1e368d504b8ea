import type { IPublishPacket } from 'mqtt-packet';

/**
 * A PUBLISH fast path: the publishes of a device, decoded straight from the socket's bytes into
 * the packet mqtt-packet would make, with the payload a view of those bytes (no copy), without
 * mqtt-packet's parser (its buffer list, states and debug calls cost more than the rest of the
 * broker's work on a publish).
 *
 * Only what is certainly well formed takes this path: QoS 0, 1 or 2, DUP only with QoS 1 or 2, a
 * topic of ASCII other than U+0000 (valid UTF-8 without U+0000 by construction, so the strict
 * UTF-8 checks hold) and a packet identifier that fit in the packet; in MQTT 5, no properties or
 * a Topic Alias alone. Anything else (QoS 3, other characters or properties, a length that does
 * not add up) goes to mqtt-packet, which decodes or refuses it as before. The checks that come
 * after decoding (packet identifier 0, topic names and aliases, limits) are the same for both
 * paths: dispatch runs them on every packet.
 */

/**
 * Where the packet starting at `offset` ends (its fixed header and body), or -1 when its end is
 * beyond `bytes` (or its Remaining Length is cut). The frame scanner has refused lengths of
 * more than four bytes already.
 */
export function frameEnd(bytes: Buffer, offset: number): number {
  const size = frameSize(bytes, offset);
  return size >= 0 && offset + size <= bytes.length ? offset + size : -1;
}

/**
 * Bytes of the packet starting at `offset` (fixed header and body), or -1 when its Remaining
 * Length is cut by the end of `bytes` (or longer than four bytes).
 */
export function frameSize(bytes: Buffer, offset: number): number {
  let length = 0;
  let multiplier = 1;
  let at = offset + 1;
  for (let count = 0; count < 4; count++) {
    if (at >= bytes.length) return -1;
    const byte = bytes[at++] as number;
    length += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return at - offset + length;
    multiplier *= 128;
  }
  return -1;
}

/** MQTT 5 property identifier of the Topic Alias (a Two Byte Integer). */
const TOPIC_ALIAS = 0x23;

/**
 * The PUBLISH `bytes[start, end)` in the protocol version given (5, or 3.1/3.1.1 for any other),
 * when it is one for the fast path; undefined otherwise.
 */
export function decodePlainPublish(
  bytes: Buffer,
  start: number,
  end: number,
  protocolVersion: number,
): IPublishPacket | undefined {
  const header = bytes[start] as number;
  if (header >> 4 !== 3) return undefined;
  const qos = (header >> 1) & 0x03;
  const dup = (header & 0x08) !== 0;
  if (qos === 3 || (dup && qos === 0)) return undefined;
  // the body starts after the Remaining Length
  let body = start + 1;
  while (((bytes[body] as number) & 0x80) !== 0) body++;
  body++;
  if (end - body < 2) return undefined;
  const topicEnd = body + 2 + (((bytes[body] as number) << 8) | (bytes[body + 1] as number));
  const idEnd = qos === 0 ? topicEnd : topicEnd + 2;
  if (idEnd > end) return undefined;
  let payloadStart = idEnd;
  let topicAlias = -1;
  if (protocolVersion === 5) {
    // the Property Length, then nothing or a Topic Alias alone
    if (idEnd >= end) return undefined;
    const propertyLength = bytes[idEnd] as number;
    if (propertyLength === 3 && bytes[idEnd + 1] === TOPIC_ALIAS && idEnd + 4 <= end) {
      topicAlias = ((bytes[idEnd + 2] as number) << 8) | (bytes[idEnd + 3] as number);
    } else if (propertyLength !== 0) {
      return undefined;
    }
    payloadStart = idEnd + 1 + propertyLength;
  }
  for (let at = body + 2; at < topicEnd; at++) {
    const byte = bytes[at] as number;
    if (byte === 0 || byte > 0x7f) return undefined;
  }
  const topic = bytes.toString('latin1', body + 2, topicEnd);
  const payload = bytes.subarray(payloadStart, end);
  const retain = (header & 0x01) !== 0;
  const length = end - body;
  const packet: IPublishPacket =
    qos === 0
      ? { cmd: 'publish', retain, qos, dup, length, topic, payload }
      : {
          cmd: 'publish',
          retain,
          qos: qos as 1 | 2,
          dup,
          length,
          topic,
          payload,
          messageId: ((bytes[topicEnd] as number) << 8) | (bytes[topicEnd + 1] as number),
        };
  if (topicAlias >= 0) packet.properties = { topicAlias };
  return packet;
}

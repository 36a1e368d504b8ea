import type { IPublishPacket } from 'mqtt-packet';

/**
 * A PUBLISH fast path for MQTT 3.1/3.1.1: the QoS 0 and 1 publishes of a device, decoded
 * straight from the socket's bytes into the packet mqtt-packet would make, with the payload a
 * view of those bytes (no copy), without mqtt-packet's parser (its buffer list, states and
 * debug calls cost more than the rest of the broker's work on a publish).
 *
 * Only what is certainly well formed takes this path: QoS 0 or 1, DUP only with QoS 1, a topic
 * of ASCII other than U+0000 (valid UTF-8 without U+0000 by construction, so the strict UTF-8 checks
 * hold) and a packet identifier that fit in the packet. Anything else (QoS 2 or 3, other
 * characters, a length that does not add up) goes to mqtt-packet, which decodes or refuses it
 * as before. The checks that come after decoding (packet identifier 0, topic names, limits) are
 * the same for both paths: dispatch runs them on every packet.
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

/** The PUBLISH `bytes[start, end)`, when it is one for the fast path; undefined otherwise. */
export function decodePlainPublish(
  bytes: Buffer,
  start: number,
  end: number,
): IPublishPacket | undefined {
  const header = bytes[start] as number;
  if (header >> 4 !== 3) return undefined;
  const qos = (header >> 1) & 0x03;
  const dup = (header & 0x08) !== 0;
  if ((qos !== 0 && qos !== 1) || (dup && qos === 0)) return undefined;
  // the body starts after the Remaining Length
  let body = start + 1;
  while (((bytes[body] as number) & 0x80) !== 0) body++;
  body++;
  if (end - body < 2) return undefined;
  const topicEnd = body + 2 + (((bytes[body] as number) << 8) | (bytes[body + 1] as number));
  const payloadStart = topicEnd + qos * 2;
  if (payloadStart > end) return undefined;
  for (let at = body + 2; at < topicEnd; at++) {
    const byte = bytes[at] as number;
    if (byte === 0 || byte > 0x7f) return undefined;
  }
  const topic = bytes.toString('latin1', body + 2, topicEnd);
  const payload = bytes.subarray(payloadStart, end);
  const retain = (header & 0x01) !== 0;
  const length = end - body;
  if (qos === 0) return { cmd: 'publish', retain, qos, dup, length, topic, payload };
  const messageId = ((bytes[topicEnd] as number) << 8) | (bytes[topicEnd + 1] as number);
  return { cmd: 'publish', retain, qos, dup, length, topic, payload, messageId };
}

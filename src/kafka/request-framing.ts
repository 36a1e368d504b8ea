/**
 * KafkaJS 2.2.4 frames each request (size, API key and version, correlation id, client id) by
 * copying the encoded body into a zeroed buffer grown by doubling, then copying that into
 * another behind the size: two copies and two zero-fills of every Produce request, hundreds of
 * kilobytes each under load. This framing writes the header into room the body's encoder left
 * in front of it (the fast Produce encoding leaves REQUEST_HEADROOM bytes, see
 * produce-encoding.ts), else copies the body once into a buffer of its exact size. The bytes on
 * the wire are the same.
 *
 * Installed over KafkaJS's request module before its connection module loads (see
 * kafkajs-patches.ts); where it could not be, KafkaJS frames requests itself and the Produce
 * encoding leaves no room.
 */
import { isPatchedKafkajs, replaceKafkajsModule } from './kafkajs-module.js';

const MODULES = {
  request: 'kafkajs/src/protocol/request.js',
  connection: 'kafkajs/src/network/connection.js',
};

/** Bytes a body's encoder may leave free in front of it for the header (client ids up to 240 bytes). */
export const REQUEST_HEADROOM = 256;

/** An encoded request body: `buf[start ?? 0, offset)`. KafkaJS's Encoder has no `start`. */
export interface EncodedBody {
  buf: Buffer;
  offset: number;
  start?: number;
}

export interface RequestToFrame {
  correlationId: number;
  clientId: string | null | undefined;
  request: { apiKey: number; apiVersion: number; encode: () => Promise<EncodedBody> | EncodedBody };
}

let installed: boolean | undefined;

/** Whether the framing is in place (so that an encoder may leave room for it). */
export function requestFramingInstalled(): boolean {
  return installed === true;
}

/** Replaces KafkaJS's framing (once); false when it cannot: another version, or loaded already. */
export function installRequestFraming(): boolean {
  if (installed !== undefined) return installed;
  installed =
    isPatchedKafkajs() &&
    replaceKafkajsModule(MODULES.request, [MODULES.connection], () => frameRequest);
  return installed;
}

/** The request as KafkaJS's connection writes it: `{ buffer }`, the whole frame. */
export async function frameRequest(input: RequestToFrame): Promise<{ buffer: Buffer }> {
  const { correlationId, clientId, request } = input;
  const body = await request.encode();
  const start = body.start ?? 0;
  const bodyBytes = body.offset - start;
  const clientIdBytes = clientId == null ? 0 : Buffer.byteLength(clientId);
  // size, API key, API version, correlation id, client id (INT16 length, -1 for none)
  const headerBytes = 4 + 2 + 2 + 4 + 2 + clientIdBytes;
  let frame: Buffer;
  let at: number;
  if (start >= headerBytes) {
    frame = body.buf;
    at = start - headerBytes;
  } else {
    frame = Buffer.allocUnsafe(headerBytes + bodyBytes);
    body.buf.copy(frame, headerBytes, start, body.offset);
    at = 0;
  }
  const from = at;
  at = frame.writeInt32BE(headerBytes - 4 + bodyBytes, at);
  at = frame.writeInt16BE(request.apiKey, at);
  at = frame.writeInt16BE(request.apiVersion, at);
  at = frame.writeInt32BE(correlationId, at);
  if (clientId == null) frame.writeInt16BE(-1, at);
  else frame.write(clientId, frame.writeInt16BE(clientIdBytes, at), clientIdBytes, 'utf8');
  return { buffer: frame.subarray(from, from + headerBytes + bodyBytes) };
}

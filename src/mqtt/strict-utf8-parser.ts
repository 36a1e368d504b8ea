import { isUtf8 } from 'node:buffer';
import mqttPacket, { type Parser } from 'mqtt-packet';

/** The parts of mqtt-packet's parser (v9) this module reaches into. */
interface ParserInternals {
  _pos: number;
  _list: { slice(start: number, end: number): Buffer };
  _parseString(): string | null;
  _emitError(error: Error): void;
}

/**
 * An mqtt-packet parser that refuses malformed UTF-8 strings.
 *
 * mqtt-packet decodes every UTF-8 string field (topics, client id, user name,
 * string properties, user properties) leniently, turning invalid bytes into
 * U+FFFD. MQTT requires a malformed packet error for ill-formed UTF-8,
 * including encoded surrogates, and for U+0000 [MQTT-1.5.4-1, 1.5.4-2]. Only a
 * string whose decoding holds U+FFFD or U+0000 is looked at again, byte by
 * byte, so a correctly encoded U+FFFD passes and the common case costs one scan.
 */
export function strictUtf8Parser(): Parser {
  const parser = mqttPacket.parser();
  const internals = parser as unknown as ParserInternals;
  const parseString = internals._parseString.bind(parser);
  internals._parseString = () => {
    // The string's bytes follow its two-byte length.
    const start = internals._pos + 2;
    const text = parseString();
    if (text === null || !(text.includes('\uFFFD') || text.includes('\u0000'))) return text;
    const bytes = internals._list.slice(start, internals._pos);
    if (!isUtf8(bytes)) {
      internals._emitError(new Error('string is not well-formed UTF-8'));
      return null;
    }
    if (bytes.includes(0)) {
      internals._emitError(new Error('string contains U+0000'));
      return null;
    }
    return text;
  };
  return parser;
}

import type { Packet, Parser } from 'mqtt-packet';
import { strictUtf8Parser } from './strict-utf8-parser.js';

/** Where the packets (or the error) of one parse go. */
export interface PacketSink {
  packet(packet: Packet): void;
  error(error: Error): void;
}

/** The parts of mqtt-packet's parser (v9) this module sets and checks between connections. */
interface ParserState {
  settings: { protocolVersion?: number };
  error: Error | null;
  _list: { length: number };
  _stateCounter: number;
}

interface PooledParser {
  parser: Parser;
  sink: PacketSink | undefined;
}

/** The settings mqtt-packet reads the protocol version from, one object per version. */
const SETTINGS: Record<3 | 4 | 5, { protocolVersion: number }> = {
  3: { protocolVersion: 3 },
  4: { protocolVersion: 4 },
  5: { protocolVersion: 5 },
};

/** Parsers not in use; more than one only while a packet handler parses again (re-entry). */
const idle: PooledParser[] = [];

/**
 * Decodes whole MQTT packets — the connection has cut its bytes at packet boundaries — with
 * mqtt-packet parsers shared by every connection. A parser given whole packets holds nothing
 * between calls, and one per connection cost 2.5 KB of each idle connection's memory. A parser
 * left inside a packet (a malformed packet, a handler that threw) is never used again.
 */
export function parseWholePackets(
  bytes: Buffer,
  protocolVersion: 3 | 4 | 5,
  sink: PacketSink,
): void {
  const pooled = idle.pop() ?? newPooledParser();
  const state = pooled.parser as unknown as ParserState;
  // CONNECT sets mqtt-packet's settings to itself; every later packet is read with the version
  state.settings = SETTINGS[protocolVersion];
  pooled.sink = sink;
  try {
    pooled.parser.parse(bytes);
  } finally {
    pooled.sink = undefined;
    // a parser that stopped inside a packet (its own error resets it only in part) is let go
    if (state.error === null && state._list.length === 0 && state._stateCounter === 0) {
      idle.push(pooled);
    }
  }
}

function newPooledParser(): PooledParser {
  const pooled: PooledParser = { parser: strictUtf8Parser(), sink: undefined };
  pooled.parser.on('packet', (packet: Packet) => {
    pooled.sink?.packet(packet);
  });
  pooled.parser.on('error', (error: Error) => {
    pooled.sink?.error(error);
  });
  return pooled;
}

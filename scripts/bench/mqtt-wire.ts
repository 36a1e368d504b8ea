/**
 * The little MQTT 3.1.1 a load generator needs, without a client library in the loop: packets
 * are encoded once (mqtt-packet) and written as bytes; what comes back is split into packets by
 * their fixed header and read by offset. A generator's CPU is then mostly system calls, which
 * matters when it shares two cores with the server it measures.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';

export const PacketType = {
  connack: 2,
  publish: 3,
  puback: 4,
  suback: 9,
  pingresp: 13,
} as const;

export const PINGREQ = Buffer.from([0xc0, 0]);

/** One whole packet: its type, the flags of its first byte, and where its body lies in `data`. */
export interface Packet {
  type: number;
  flags: number;
  data: Buffer;
  body: number;
  end: number;
}

/** Splits a byte stream into packets. */
export class PacketReader {
  #pending: Buffer | undefined;

  constructor(readonly onPacket: (packet: Packet) => void) {}

  push(chunk: Buffer): void {
    const data = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    let offset = 0;
    for (;;) {
      const header = readFixedHeader(data, offset);
      if (header === undefined || header.end > data.length) break;
      const first = data[offset] ?? 0;
      this.onPacket({
        type: first >> 4,
        flags: first & 15,
        data,
        body: header.body,
        end: header.end,
      });
      offset = header.end;
    }
    this.#pending = offset < data.length ? data.subarray(offset) : undefined;
  }
}

/** Body offset and end of the packet at `offset`; undefined while its length is incomplete. */
function readFixedHeader(data: Buffer, offset: number): { body: number; end: number } | undefined {
  let length = 0;
  let multiplier = 1;
  for (let index = offset + 1; index < data.length && index <= offset + 4; index++) {
    const byte = data[index] ?? 0;
    length += (byte & 127) * multiplier;
    if ((byte & 128) === 0) return { body: index + 1, end: index + 1 + length };
    multiplier *= 128;
  }
  return undefined;
}

/** The packet id of a PUBACK (or of a QoS 1 PUBLISH's variable header at `at`). */
export function packetId(packet: Packet, at = packet.body): number {
  return packet.data.readUInt16BE(at);
}

/** Where a PUBLISH's payload starts, and its QoS and packet id (0 for QoS 0). */
export function publishParts(packet: Packet): { qos: number; id: number; payload: number } {
  const qos = (packet.flags >> 1) & 3;
  const afterTopic = packet.body + 2 + packet.data.readUInt16BE(packet.body);
  return qos === 0
    ? { qos, id: 0, payload: afterTopic }
    : { qos, id: packet.data.readUInt16BE(afterTopic), payload: afterTopic + 2 };
}

/** MQTT 3.1.1 CONNECT, clean session; short ones written here, without an encoder object. */
export function connectPacket(clientId: string, keepalive: number): Buffer {
  const idLength = Buffer.byteLength(clientId);
  // variable header (10 bytes) and the client id (2 + n): a one-byte remaining length
  if (idLength <= 115) {
    const packet = Buffer.allocUnsafe(14 + idLength);
    packet[0] = 0x10;
    packet[1] = 12 + idLength;
    packet.write('\x00\x04MQTT\x04\x02', 2, 'latin1');
    packet.writeUInt16BE(keepalive, 10);
    packet.writeUInt16BE(idLength, 12);
    packet.write(clientId, 14, 'utf8');
    return packet;
  }
  return mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clientId,
    clean: true,
    keepalive,
  });
}

export function publishPacket(topic: string, payload: Buffer, qos: 0 | 1, id: number): Buffer {
  return mqttPacket.generate({
    cmd: 'publish',
    topic,
    payload,
    qos,
    dup: false,
    retain: false,
    ...(qos > 0 ? { messageId: id } : {}),
  });
}

export function pubackPacket(id: number): Buffer {
  return Buffer.from([0x40, 2, id >> 8, id & 255]);
}

export function subscribePacket(id: number, filter: string, qos: 0 | 1): Buffer {
  return mqttPacket.generate({
    cmd: 'subscribe',
    messageId: id,
    subscriptions: [{ topic: filter, qos }],
  });
}

/** A TCP connection whose packets go to `onPacket` (replaceable: one handler per phase). */
export class WireConnection {
  onPacket: (packet: Packet) => void = () => undefined;
  /** Resolves when the socket has closed: what a wait for the server races with. */
  readonly closed: Promise<void>;
  readonly #reader = new PacketReader((packet) => {
    this.onPacket(packet);
  });

  private constructor(
    readonly socket: Socket,
    readonly clientId: string,
  ) {
    socket.setNoDelay(true);
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        resolve();
      });
    });
    // a server that goes away is seen as 'close'; an unhandled 'error' would end the process
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      // replies to one chunk's packets leave in one write
      socket.cork();
      this.#reader.push(chunk);
      socket.uncork();
    });
  }

  /** Connects, sends CONNECT, resolves on a successful CONNACK. */
  static open(
    host: string,
    port: number,
    clientId: string,
    keepalive: number,
  ): Promise<WireConnection> {
    return new Promise((resolve, reject) => {
      const socket = connectTcp({ host, port });
      const connection = new WireConnection(socket, clientId);
      socket.once('error', reject);
      socket.once('close', () => {
        reject(new Error(`${clientId}: closed before CONNACK`));
      });
      connection.onPacket = (packet) => {
        if (packet.type !== PacketType.connack) return;
        const code = packet.data[packet.body + 1] ?? 255;
        if (code !== 0) reject(new Error(`${clientId}: CONNACK ${code}`));
        else resolve(connection);
      };
      socket.once('connect', () => socket.write(connectPacket(clientId, keepalive)));
    });
  }

  /** Resolves on the next packet of `type` (SUBACK, PINGRESP); rejects if the socket closes. */
  next(type: number): Promise<Packet> {
    const next = new Promise<Packet>((resolve) => {
      const previous = this.onPacket;
      this.onPacket = (packet) => {
        if (packet.type !== type) {
          previous(packet);
          return;
        }
        this.onPacket = previous;
        resolve(packet);
      };
    });
    const closed = this.closed.then(() => {
      throw new Error(`${this.clientId}: closed by the server`);
    });
    return Promise.race([next, closed]);
  }

  close(): void {
    this.socket.destroy();
  }
}

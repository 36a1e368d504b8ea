import { connect, type Socket } from 'node:net';
import mqttPacket, { type IConnectPacket, type Packet, type QoS } from 'mqtt-packet';
import { onTestFinished } from 'vitest';
import { waitFor } from './wait-for.js';

/**
 * A TCP client that speaks raw bytes, for malformed input and exact protocol
 * checks. Packets from the server are parsed with mqtt-packet.
 */
export class RawClient {
  readonly packets: Packet[] = [];
  closed = false;
  readonly #socket: Socket;
  #parser = mqttPacket.parser();
  #version: 3 | 4 | 5 = 4;
  #nextPacketId = 1;

  private constructor(socket: Socket) {
    this.#socket = socket;
    this.#parser.on('packet', (packet: Packet) => this.packets.push(packet));
    socket.on('data', (chunk: Buffer) => this.#parser.parse(chunk));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  /** `localAddress`: the source address, e.g. 127.0.0.2 (on Linux any 127.x.y.z is local). */
  static async connect(port: number, localAddress?: string): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port, ...(localAddress && { localAddress }) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawClient(socket);
    onTestFinished(() => {
      socket.destroy();
    });
    return client;
  }

  /** Sends a packet (encoded for `protocolVersion`) or raw bytes. */
  send(data: Packet | Buffer, protocolVersion: 3 | 4 | 5 = 4): void {
    this.#socket.write(
      Buffer.isBuffer(data) ? data : mqttPacket.generate(data, { protocolVersion }),
    );
  }

  /** Tells the parser which version the server's packets use (after CONNECT). */
  expectVersion(protocolVersion: 3 | 4 | 5): void {
    this.#version = protocolVersion;
    this.#parser = mqttPacket.parser({ protocolVersion });
    this.#parser.on('packet', (packet: Packet) => this.packets.push(packet));
    this.#socket.removeAllListeners('data');
    this.#socket.on('data', (chunk: Buffer) => this.#parser.parse(chunk));
  }

  /** Waits for the next packet with this command that was not yet taken. */
  async next<C extends Packet['cmd']>(
    cmd: C,
    timeoutMs = 10_000,
  ): Promise<Extract<Packet, { cmd: C }>> {
    const packet = await waitFor(
      () => {
        const index = this.packets.findIndex((candidate) => candidate.cmd === cmd);
        return index === -1 ? undefined : this.packets.splice(index, 1)[0];
      },
      { timeoutMs, what: `${cmd} from the server` },
    );
    return packet as Extract<Packet, { cmd: C }>;
  }

  /** SUBSCRIBE to one filter (in the version of the handshake) and wait for SUBACK. */
  async subscribe(topic: string, qos: QoS): Promise<Extract<Packet, { cmd: 'suback' }>> {
    const messageId = this.#nextPacketId++;
    this.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] }, this.#version);
    return this.next('suback');
  }

  /** Stops reading from the socket: a stalled client, as the server sees it. */
  pauseReading(): void {
    this.#socket.pause();
  }

  /** Drops the TCP connection without DISCONNECT. */
  destroy(): void {
    this.#socket.destroy();
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.closed, { timeoutMs, what: 'the server to close the connection' });
  }

  /** CONNECT and wait for CONNACK; clean defaults to true and keep alive to 0. */
  async handshake(
    connect: Pick<
      IConnectPacket,
      'clientId' | 'keepalive' | 'clean' | 'properties' | 'will' | 'username'
    > & {
      protocolVersion: 3 | 4 | 5;
      /** mqtt-packet writes a string as its UTF-8 bytes. */
      password?: string | Buffer;
    },
  ): Promise<Extract<Packet, { cmd: 'connack' }>> {
    this.expectVersion(connect.protocolVersion);
    const { password } = connect;
    this.send(
      {
        clean: true,
        keepalive: 0,
        ...connect,
        password: typeof password === 'string' ? Buffer.from(password) : password,
        cmd: 'connect',
        protocolId: connect.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
      },
      connect.protocolVersion,
    );
    return this.next('connack');
  }
}

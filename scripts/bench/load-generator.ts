/**
 * A load generator process for the fleet bench: CONNECTIONS MQTT connections (raw sockets and
 * pre-encoded packets, no MQTT client library in the loop), each keeping WINDOW QoS 1 publishes
 * of PAYLOAD bytes unacknowledged, MESSAGES in all; prints one JSON line: acknowledged count,
 * seconds, PUBACK latency percentiles.
 *
 *   node --import tsx scripts/bench/load-generator.ts PORT CONNECTIONS WINDOW PAYLOAD MESSAGES PREFIX
 */
import { connect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';

const [port, connections, window, payloadBytes, messages] = process.argv.slice(2, 7).map(Number);
const prefix = process.argv[7] ?? 'gen';
const payload = Buffer.alloc(payloadBytes ?? 256, 'x');
const perConnection = Math.ceil((messages ?? 0) / (connections ?? 1));

interface Stream {
  socket: Socket;
  sent: number;
  acked: number;
  sentAt: Map<number, number>;
}

const latencies: number[] = [];
let acked = 0;
const started = process.hrtime.bigint();

function publishPacket(clientId: string, id: number): Buffer {
  return mqttPacket.generate({
    cmd: 'publish',
    topic: `bench/${clientId}/data`,
    payload,
    qos: 1,
    dup: false,
    retain: false,
    messageId: id,
  });
}

async function run(index: number): Promise<void> {
  const clientId = `${prefix}-${index}`;
  const socket = connect({ host: '127.0.0.1', port: port ?? 1883 });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const stream: Stream = { socket, sent: 0, acked: 0, sentAt: new Map() };
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  // packet ids cycle over 1..window: one in flight per id at a time
  const packets = Array.from({ length: window ?? 1 }, (_, slot) =>
    publishPacket(clientId, slot + 1),
  );
  const send = (): void => {
    while (stream.sent < perConnection && stream.sent - stream.acked < (window ?? 1)) {
      const id = (stream.sent % (window ?? 1)) + 1;
      stream.sentAt.set(id, performance.now());
      socket.write(packets[id - 1] as Buffer);
      stream.sent++;
    }
  };
  await new Promise<void>((resolve) => {
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connack') {
        send();
      } else if (packet.cmd === 'puback') {
        const id = packet.messageId ?? 0;
        latencies.push(performance.now() - (stream.sentAt.get(id) ?? 0));
        stream.acked++;
        acked++;
        if (stream.acked >= perConnection) resolve();
        else send();
      }
    });
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId,
        clean: true,
        keepalive: 60,
      }),
    );
  });
  socket.end();
}

await Promise.all(Array.from({ length: connections ?? 1 }, (_, index) => run(index)));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
latencies.sort((a, b) => a - b);
const at = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0;
process.stdout.write(`${JSON.stringify({ acked, seconds, p50: at(50), p99: at(99) })}\n`);

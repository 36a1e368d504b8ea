import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BrokerProbe } from '../../../src/kafka/broker-probe.js';
import { waitFor } from '../../support/wait-for.js';

/** A TCP server on a free port that does `onRequest` with each request it receives. */
async function server(onRequest: (socket: Socket, request: Buffer) => void): Promise<Server> {
  const listening = createServer((socket) => {
    socket.on('data', (request) => {
      onRequest(socket, request);
    });
  });
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    listening.close();
  });
  return listening;
}

function address(listening: Server): string {
  return `127.0.0.1:${(listening.address() as AddressInfo).port}`;
}

function probe(brokers: string[]): BrokerProbe {
  const subject = new BrokerProbe(brokers, { intervalMs: 20, timeoutMs: 300 });
  onTestFinished(() => {
    subject.close();
  });
  return subject;
}

/** Answers like Kafka: size, then the request's correlation id (bytes 8..11 of the request). */
function answer(socket: Socket, request: Buffer): void {
  const response = Buffer.alloc(10);
  response.writeInt32BE(6, 0);
  request.copy(response, 4, 8, 12);
  socket.write(response);
}

describe('BrokerProbe', () => {
  it('sends an ApiVersions request and is reachable while a broker answers it', async () => {
    const requests: Buffer[] = [];
    const kafka = await server((socket, request) => {
      requests.push(request);
      answer(socket, request);
    });
    const subject = probe(['127.0.0.1:1', address(kafka)]);
    await waitFor(() => requests.length >= 2);
    expect(requests[0]?.readInt16BE(4)).toBe(18); // api key ApiVersions
    expect(subject.reachable).toBe(true);
  });

  it('is not reachable when brokers accept connections but do not answer, and is again once one does', async () => {
    let answering = false;
    const kafka = await server((socket, request) => {
      if (answering) answer(socket, request);
    });
    const subject = probe([address(kafka)]);
    await waitFor(() => !subject.reachable);
    answering = true;
    await waitFor(() => subject.reachable);
  });

  it('is not reachable when nothing listens, nor when the answer is to another request', async () => {
    const confused = await server((socket) => {
      socket.write(Buffer.from([0, 0, 0, 6, 0x7f, 0, 0, 0, 0, 0]));
    });
    const subject = probe(['127.0.0.1:1', address(confused)]);
    await waitFor(() => !subject.reachable);
  });
});

import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'vitest';
import { BrokerProbe } from '../../../src/kafka/broker-probe.js';
import { waitFor } from '../../support/wait-for.js';

describe('BrokerProbe', () => {
  it('is reachable while a broker accepts connections, and not once none does', async () => {
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const probe = new BrokerProbe(['127.0.0.1:1', `127.0.0.1:${port}`], {
      intervalMs: 20,
      timeoutMs: 500,
    });
    try {
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
      await waitFor(() => !probe.reachable);
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      await waitFor(() => probe.reachable);
    } finally {
      server.close();
      probe.close();
    }
  });
});

import type { AddressInfo, Server } from 'node:net';

/** Listens on host:port; resolves with the bound address (port 0 picks a free one). */
export async function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}

/** Stops accepting; resolves once the server's open connections have ended. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
}

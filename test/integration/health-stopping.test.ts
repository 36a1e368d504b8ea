import { describe, expect, it } from 'vitest';
import { startBridge } from '../support/bridge.js';
import { RawClient } from '../support/raw-client.js';

describe('readiness while stopping', () => {
  it('turns 503 "stopping" as soon as a stop begins, so load balancers drain the bridge', async () => {
    const running = await startBridge('uplink: []\n');
    expect((await fetch(`${running.httpUrl}/health/ready`)).status).toBe(200);
    // a client that reads nothing keeps the stop waiting for its connection to close
    const client = await RawClient.connect(running.mqttPort);
    await client.handshake({ clientId: 'slow-to-close', protocolVersion: 5 });
    client.pauseReading();
    const stopped = running.bridge.stop();
    const stopping = await fetch(`${running.httpUrl}/health/ready`);
    expect(stopping.status).toBe(503);
    expect(await stopping.json()).toMatchObject({ reason: 'stopping' });
    client.destroy();
    await stopped;
  });
});

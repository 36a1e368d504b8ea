/**
 * Fault injection on the bridge process (issue 5): SIGTERM while devices publish (graceful:
 * exit 0 within the grace period, acknowledged publishes in Kafka, MQTT 5 clients told 0x8B),
 * and kill -9 while devices publish, then a restart on the same port: the devices reconnect and
 * retransmit what was not acknowledged, and nothing acknowledged is missing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../scripts/kafka/local-kafka.js';
import { BridgeProcess, stopAllBridgeProcesses, type Exit } from '../support/bridge-process.js';
import { createTopic, kafkaBrokers, uniqueId } from '../support/kafka-helpers.js';
import {
  checkStreams,
  readAllRecords,
  reportLine,
  StreamDevice,
} from '../support/stream-devices.js';
import { waitFor } from '../support/wait-for.js';

afterAll(async () => {
  await stopAllBridgeProcesses();
});

function rules(prefix: string, topic: string): string {
  return `uplink:\n  - name: stream\n    from: ${prefix}/{device}/data\n    to: { topic: ${topic}, key: '{device}' }\n`;
}

const total = (devices: StreamDevice[], count: (device: StreamDevice) => number): number =>
  devices.reduce((sum, device) => sum + count(device), 0);

/** Resolves with the exit, or undefined if the process is still running after `ms`. */
async function exitWithin(bridge: BridgeProcess, ms: number): Promise<Exit | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      bridge.exited,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => {
          resolve(undefined);
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('faults: the bridge process stopped and killed', () => {
  it('SIGTERM during load: exit 0 within the grace period, every acknowledged publish in Kafka, DISCONNECT 0x8B', async () => {
    const topic = await createTopic('sigterm', 3);
    const prefix = `sigterm-${uniqueId()}`;
    const graceMs = 3_000;
    const bridge = await BridgeProcess.start({
      brokers: kafkaBrokers().join(','),
      mappings: rules(prefix, topic),
      env: { BRIDGE_SHUTDOWN_GRACE_MS: String(graceMs) },
    });
    const devices = await Promise.all(
      ([5, 5, 5, 4, 4, 4] as const).map((protocolVersion, index) => {
        const clientId = `sigterm-${index}-${uniqueId()}`;
        return new StreamDevice({
          port: bridge.mqttPort,
          clientId,
          topic: `${prefix}/${clientId}/data`,
          protocolVersion,
          payloadBytes: 256,
        }).connected();
      }),
    );
    try {
      for (const device of devices) device.stream({ intervalMs: 5, window: 200, perTick: 20 });
      await waitFor(() => total(devices, (device) => device.acked.size) >= 3_000, {
        timeoutMs: 20_000,
        what: 'load to flow',
      });
      const outstandingAtSignal = total(devices, (device) => device.outstanding);
      const signalled = Date.now();
      bridge.signal('SIGTERM');
      const exit = await exitWithin(bridge, graceMs + 15_000);
      const exitMs = exit ? exit.at - signalled : 'still running';
      for (const device of devices) device.stopStream();
      // Every device sees its connection end (v5: after DISCONNECT).
      await waitFor(() => devices.every((device) => device.closes > 0), {
        timeoutMs: 5_000,
        what: 'the devices to be disconnected',
      }).catch(() => undefined);

      const records = await readAllRecords(kafkaBrokers(), topic);
      const report = checkStreams(devices, records);
      const logTime = (msg: string): number | undefined =>
        bridge.logLines().find((line) => line.msg === msg)?.time as number | undefined;
      const stopping = logTime('stopping');
      const stopped = logTime('stopped');
      const v5 = devices.filter((_, index) => index < 3);
      const disconnectCodes = v5.map((device) =>
        device.disconnects.map((packet) => `0x${(packet.reasonCode ?? 0).toString(16)}`).join(','),
      );
      console.log(
        reportLine('sigterm', report, {
          outstandingAtSignal,
          exitCode: exit?.code ?? 'none',
          exitMs,
          stoppingToStoppedMs:
            stopping !== undefined && stopped !== undefined ? stopped - stopping : 'n/a',
          graceMs,
          v5Disconnects: disconnectCodes.join('/'),
          bridgeLog: bridge.problems().join('; ') || 'clean',
        }),
      );
      expect({
        exitCode: exit?.code,
        // the grace period, and a second for the process to end
        exitedWithinGrace: typeof exitMs === 'number' && exitMs <= graceMs + 1_000,
        stoppedLogged: bridge.logLines().some((line) => line.msg === 'stopped'),
        v5Disconnects: disconnectCodes,
        v4Closed: devices.slice(3).every((device) => device.closes > 0),
        lostAcked: report.lostAcked,
        // what the bridge produced it also acknowledged before closing (README: Command line)
        foundUnacked: report.foundUnacked,
        duplicates: report.duplicates,
        orderViolations: report.orderViolations,
        foreign: report.foreign,
      }).toEqual({
        exitCode: 0,
        exitedWithinGrace: true,
        stoppedLogged: true,
        v5Disconnects: ['0x8b', '0x8b', '0x8b'],
        v4Closed: true,
        lostAcked: 0,
        foundUnacked: 0,
        duplicates: 0,
        orderViolations: 0,
        foreign: 0,
      });
    } finally {
      await Promise.all(devices.map((device) => device.end()));
    }
  }, 60_000);

  it('kill -9 during load, restart: devices retransmit, every acknowledged publish is in Kafka', async () => {
    const topic = await createTopic('sigkill', 3);
    const prefix = `sigkill-${uniqueId()}`;
    const port = await findFreePort();
    const start = (): Promise<BridgeProcess> =>
      BridgeProcess.start({
        brokers: kafkaBrokers().join(','),
        mappings: rules(prefix, topic),
        mqttPort: port,
      });
    const first = await start();
    // Devices as in the field: persistent sessions, reconnecting every 200 ms; MQTT.js keeps
    // unacknowledged messages and sends them again after reconnecting.
    const perDevice = 3_000;
    const devices = await Promise.all(
      ([4, 4, 4, 5, 5] as const).map((protocolVersion, index) => {
        const clientId = `sigkill-${index}-${uniqueId()}`;
        return new StreamDevice({
          port,
          clientId,
          topic: `${prefix}/${clientId}/data`,
          protocolVersion,
          payloadBytes: 256,
          mqtt: {
            clean: false,
            reconnectPeriod: 200,
            keepalive: 30,
            ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 600 } } : {}),
          },
        }).connected();
      }),
    );
    try {
      for (const device of devices) {
        device.stream({ intervalMs: 5, window: 200, perTick: 20, max: perDevice });
      }
      await waitFor(() => total(devices, (device) => device.acked.size) >= 2_500, {
        timeoutMs: 20_000,
        what: 'load to flow',
      });
      first.signal('SIGKILL');
      const killed = await first.exited;
      const sentAtKill = total(devices, (device) => device.sent);
      const ackedAtKill = total(devices, (device) => device.acked.size);
      const restarting = Date.now();
      const second = await start();
      const restartMs = Date.now() - restarting;
      await waitFor(() => devices.every((device) => device.sent >= perDevice), {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: 'the devices to send everything',
      }).catch(() => undefined);
      await Promise.allSettled(devices.map((device) => device.settled(30_000)));

      const records = await readAllRecords(kafkaBrokers(), topic);
      const report = checkStreams(devices, records);
      console.log(
        reportLine('sigkill-restart', report, {
          killedBy: killed.signal ?? killed.code,
          sentAtKill,
          ackedAtKill,
          unackedAtKill: sentAtKill - ackedAtKill,
          reconnects: total(devices, (device) => device.closes),
          restartMs,
          bridgeLog: [...first.problems(), ...second.problems()].join('; ') || 'clean',
        }),
      );
      expect(killed.signal).toBe('SIGKILL');
      expect({
        lostAcked: report.lostAcked,
        unexplainedDuplicates: report.unexplainedDuplicates,
        orderViolations: report.orderViolations,
        foreign: report.foreign,
        // the devices' retransmissions were all acknowledged by the new bridge
        failed: report.failed,
        unanswered: report.unanswered,
        sent: report.sent,
      }).toEqual({
        lostAcked: 0,
        unexplainedDuplicates: 0,
        orderViolations: 0,
        foreign: 0,
        failed: 0,
        unanswered: 0,
        sent: perDevice * devices.length,
      });
    } finally {
      await Promise.all(devices.map((device) => device.end()));
    }
  }, 90_000);
});

import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { BridgeProcess } from '../support/bridge-process.js';
import { createTopic, kafkaBrokers } from '../support/kafka-helpers.js';

/*
 * Closed by default (issue 12): without a users file the bridge takes only clients that connect
 * from this machine, says so at start, and accepting anyone is an explicit, logged choice. (A
 * client from another address gets CONNACK 0x87 / 0x05: unit-tested in
 * test/unit/auth/anonymous-access.test.ts, since every test client here is on loopback.)
 */

const rules = (topic: string): string =>
  `uplink:\n  - name: up\n    from: up/{device}\n    to: { topic: ${topic}, key: '{device}' }\n`;

describe('without auth.file', () => {
  it('takes clients from this machine and says at start that only those get in', async () => {
    const topic = await createTopic('closed');
    const bridge = await BridgeProcess.start({
      brokers: kafkaBrokers().join(','),
      mappings: rules(topic),
      env: { BRIDGE_MQTT_HOST: '0.0.0.0' },
    });
    const client = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: bridge.mqttPort,
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    await client.publishAsync('up/d1', 'x', { qos: 1 });
    await client.endAsync();
    const lines = bridge.logLines();
    expect(
      lines.some((line) =>
        String(line.msg).startsWith(
          'no auth.file: only clients connecting from this machine (loopback)',
        ),
      ),
    ).toBe(true);
    expect(lines.filter((line) => (line.level ?? 0) === 40).map((line) => line.msg)).not.toContain(
      'no auth.file and auth.allowAnonymous is true: every client may connect, publish and subscribe',
    );
  });

  it('accepts anyone only with auth.allowAnonymous, and warns about it', async () => {
    const bridge = await BridgeProcess.start({
      brokers: kafkaBrokers().join(','),
      mappings: rules(await createTopic('open')),
      env: { BRIDGE_AUTH_ALLOW_ANONYMOUS: 'true' },
    });
    const warnings = bridge.logLines().filter((line) => line.level === 40);
    expect(warnings.map((line) => line.msg)).toContain(
      'no auth.file and auth.allowAnonymous is true: every client may connect, publish and subscribe',
    );
  });
});

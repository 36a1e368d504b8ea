import { rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { describe, expect, it, onTestFinished } from 'vitest';
import { formatIssue } from '../../src/rules/errors.js';
import type { ConfigOverrides } from '../../src/config/load.js';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { createTopic, highWatermarks, readRecords } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

/*
 * Hot reload of the mapping files against the real Kafka: a connected MQTT.js client keeps its
 * connection while the rules change under it, and its next publish follows the new rules.
 */

const SUCCESSES = 'bridge_mappings_reloads_total{result="success"}';
const FAILURES = 'bridge_mappings_reloads_total{result="failure"}';

/** One rule sending `reload/{id}` to `topic`. */
function rulesTo(topic: string, to = ''): string {
  return `uplink:\n  - name: reload\n    from: reload/{id}\n    to: { topic: ${topic}, key: "{id}"${to} }\n`;
}

async function bridgeWith(mappings: string, overrides: ConfigOverrides = {}) {
  const running = await startBridge(mappings, overrides);
  onTestFinished(() => running.stop());
  return { running, file: join(running.mappingsFolder, 'test.yaml') };
}

/** A client that counts how often its connection closed. */
async function watchedClient(running: RunningBridge, clientId: string) {
  const client = await connectClient(running.mqttPort, { protocolVersion: 5, clientId });
  const connection = { client, closes: 0 };
  client.on('close', () => (connection.closes += 1));
  return connection;
}

async function valueOf(topic: string): Promise<string | undefined> {
  return (await readRecords(topic, 1))[0]?.value?.toString();
}

async function reloads(running: RunningBridge, series: string, count: number): Promise<void> {
  await waitFor(async () => (await running.metric(series)) >= count, {
    what: `${count} reload(s) counted as ${series}`,
  });
}

function expectStillConnected(connection: { client: MqttClient; closes: number }): void {
  expect(connection.client.connected).toBe(true);
  expect(connection.closes).toBe(0);
}

describe('hot reload of the mappings', () => {
  it('a rewritten file routes the next publish to its topic; the connection stays', async () => {
    const before = await createTopic('before');
    const after = await createTopic('after');
    const { running, file } = await bridgeWith(rulesTo(before));
    const connection = await watchedClient(running, 'reload-1');
    await connection.client.publishAsync('reload/d1', 'one', { qos: 1 });

    await writeFile(file, rulesTo(after));
    await reloads(running, SUCCESSES, 1);
    await connection.client.publishAsync('reload/d1', 'two', { qos: 1 });

    expect(await valueOf(after)).toBe('two');
    expect(await valueOf(before)).toBe('one');
    expect(await highWatermarks(before)).toEqual([1]);
    expectStillConnected(connection);
    expect(await running.metric('bridge_mappings_rules')).toBe(1);
  });

  it('follows a file renamed over the old one, and files added to or removed from the folder', async () => {
    const first = await createTopic('first');
    const second = await createTopic('second');
    const extra = await createTopic('extra');
    const { running, file } = await bridgeWith(rulesTo(first));
    const connection = await watchedClient(running, 'reload-2');

    // As editors save: write a temporary file, rename it over the mapping file.
    await writeFile(`${file}.tmp`, rulesTo(second));
    await rename(`${file}.tmp`, file);
    await reloads(running, SUCCESSES, 1);
    await connection.client.publishAsync('reload/d2', 'renamed', { qos: 1 });
    expect(await valueOf(second)).toBe('renamed');

    const more = join(running.mappingsFolder, 'more.yml');
    await writeFile(
      more,
      `uplink:\n  - name: extra\n    from: extra/{id}\n    to: { topic: ${extra} }\n`,
    );
    await waitFor(async () => (await running.metric('bridge_mappings_rules')) === 2, {
      what: 'the rule of the new file',
    });
    await connection.client.publishAsync('extra/d2', 'new file', { qos: 1 });
    expect(await valueOf(extra)).toBe('new file');

    await unlink(more);
    await waitFor(async () => (await running.metric('bridge_mappings_rules')) === 1, {
      what: 'the removal of the file',
    });
    expectStillConnected(connection);
  });

  it('refuses an invalid file with its errors; the old rules keep running', async () => {
    const kept = await createTopic('kept');
    const { running, file } = await bridgeWith(rulesTo(kept));
    const connection = await watchedClient(running, 'reload-3');

    await writeFile(
      file,
      'uplink:\n  - name: reload\n    from: reload/{id}\n    to:\n      topc: x\n',
    );
    await reloads(running, FAILURES, 1);
    const result = await running.bridge.reloadMappings();
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.issues.map(formatIssue)).toContainEqual(
      expect.stringMatching(/test\.yaml:5:7: unknown field "topc" \(did you mean "topic"\?\)/),
    );

    await connection.client.publishAsync('reload/d3', 'still the old rules', { qos: 1 });
    expect(await valueOf(kept)).toBe('still the old rules');
    expectStillConnected(connection);
    expect(await running.metric(SUCCESSES)).toBe(0);
    expect(await running.metric(FAILURES)).toBeGreaterThanOrEqual(2);
    expect(await running.metric('bridge_mappings_rules')).toBe(1);
  });

  it('refuses a fixed partition the topic does not have, as at start (mappingsWatch off)', async () => {
    const kept = await createTopic('kept');
    const single = await createTopic('single', 1);
    const { running, file } = await bridgeWith(rulesTo(kept), { mappingsWatch: false });
    const connection = await watchedClient(running, 'reload-4');

    await writeFile(file, rulesTo(single, ', partition: 3'));
    const refused = await running.bridge.reloadMappings();
    expect(refused.ok ? [] : refused.issues.map(formatIssue)).toEqual([
      expect.stringMatching(
        new RegExp(
          `test\\.yaml:4:\\d+: partition 3 is out of range: Kafka topic "${single}" has 1 partition$`,
        ),
      ),
    ]);
    await connection.client.publishAsync('reload/d4', 'old', { qos: 1 });
    expect(await valueOf(kept)).toBe('old');

    await writeFile(file, rulesTo(single, ', partition: 0'));
    expect(await running.bridge.reloadMappings()).toEqual({ ok: true, ruleCount: 1 });
    await connection.client.publishAsync('reload/d4', 'new', { qos: 1 });
    expect(await valueOf(single)).toBe('new');
    expect(await running.metric(SUCCESSES)).toBe(1);
    expect(await running.metric(FAILURES)).toBe(1);
    expectStillConnected(connection);
  });
});

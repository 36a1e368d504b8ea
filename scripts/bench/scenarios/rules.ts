/**
 * The QoS 1 durable load through 10, 1,000 and 10,000 rules: does the per-message cost depend
 * on the number of rules? Each rule is `site<i>/{device}/#` to the same topic; the publishes of
 * each connection cycle over 32 topics, so the load touches up to 1,600 different rules.
 */
import { ratiosToPeers, round, type Row } from '../report.js';
import { startBridgeServer } from '../servers.js';
import { durableLoad, measureQos1, onServer, type Scenario } from './context.js';

const SIZES = [10, 1_000, 10_000];

function mappings(size: number, topic: string): string {
  const lines = ['uplink:'];
  for (let index = 0; index < size; index++) {
    lines.push(
      `  - { name: r${index}, from: 'site${index}/{device}/#', to: { topic: ${topic}, key: '{clientId}' } }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export const rules: Scenario = {
  name: 'rules',
  async run(context) {
    const { kafka } = context;
    const messages = context.options.ruleMessages;
    const rows: Row[] = [];
    for (const size of SIZES) {
      const peer = `bridge, ${size.toLocaleString('en-US')} rules`;
      const row = await onServer(
        peer,
        () => startBridgeServer({ brokers: kafka.brokers, mappings: mappings(size, kafka.topic) }),
        async (server) => ({
          ...(await measureQos1(
            context,
            server,
            { ...durableLoad(context, server.port, messages), spread: size },
            true,
          )),
          extra: { 'start s': round(server.process.startSeconds, 1) },
        }),
        context,
      );
      rows.push({ ...row, peer });
    }
    return {
      name: this.name,
      title: 'Rules: 10, 1,000 and 10,000',
      parameters:
        `The QoS 1 durable load (50 connections × 32 in flight, 256-byte payloads, ${messages.toLocaleString('en-US')} ` +
        `messages) with N rules site<i>/{device}/# to one 6-partition topic; each connection publishes to 32 of ` +
        'the rules in turn. start s: from spawning the bridge to ready (rules compiled).',
      rows,
      ratios: ratiosToPeers(rows, rows[0]?.peer),
      ratioLabel: '10 rules ÷ this',
    };
  },
};

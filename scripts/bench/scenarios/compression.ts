/**
 * `--scenario compression` (not in the default set): the QoS 1 durable load with JSON telemetry
 * payloads (about 190 bytes, varying values: compressible as real telemetry is) through one
 * bridge per kafka.compression codec; bytes the bridge sent to Kafka per message, from the
 * kernel's counters of its connections.
 */
import { round, type Row } from '../report.js';
import { tcpBytesSent } from '../os-stats.js';
import { startBridgeServer } from '../servers.js';
import { telemetryPayload } from '../payloads.js';
import { durableLoad, measureQos1, onServer, uplinkRule, type Scenario } from './context.js';

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

export const compression: Scenario = {
  name: 'compression',
  async run(context) {
    const { kafka } = context;
    const messages = context.options.ruleMessages;
    const ports = kafka.brokers.split(',').map((broker) => Number(broker.split(':').at(-1)));
    const rows: Row[] = [];
    for (const codec of CODECS) {
      rows.push(
        await onServer(
          `bridge, ${codec}`,
          () =>
            startBridgeServer({
              brokers: kafka.brokers,
              mappings: uplinkRule(kafka.topic),
              env: { BRIDGE_KAFKA_COMPRESSION: codec },
            }),
          async (server) => {
            const load = { ...durableLoad(context, server.port, messages), telemetry: true };
            const before = tcpBytesSent(server.pids(), ports);
            const row = await measureQos1(context, server, load, true);
            // the warm-up's bytes are in too: divided by all the messages sent
            const sent = (row.count ?? 0) + Math.min(20_000, messages);
            const bytes = tcpBytesSent(server.pids(), ports) - before;
            return {
              ...row,
              peer: `bridge, ${codec}`,
              extra: { 'Kafka B/msg': round(bytes / sent, 0) },
            };
          },
          context,
        ),
      );
    }
    const none = rows[0]?.extra?.['Kafka B/msg'];
    for (const row of rows) {
      const bytes = row.extra?.['Kafka B/msg'];
      if (row.extra && none && bytes !== undefined)
        row.extra['% of none'] = round((100 * bytes) / none, 0);
    }
    return {
      name: this.name,
      title: 'Uplink compression (kafka.compression)',
      parameters:
        `The QoS 1 durable load with JSON telemetry payloads of ~${telemetryPayload(0, 0).length} bytes, ` +
        `${messages.toLocaleString('en-US')} messages, one bridge per codec. Kafka B/msg: bytes the bridge sent on its ` +
        'Kafka connections (produce requests, metadata) per message, warm-up included.',
      rows,
      ratios: {},
    };
  },
};

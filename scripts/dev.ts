/**
 * `npm run dev` — a working bridge on this machine in one command:
 *
 * 1. Kafka: BRIDGE_KAFKA_BROKERS if set; else the local Kafka on KAFKA_PORT (default 9092),
 *    reused if `npm run kafka:start` already runs it, otherwise started here and stopped on exit.
 * 2. The bridge, with the mappings in mappings/, the rules' fixed topics created when missing
 *    (kafka.createTopics) and pretty logs (BRIDGE_* variables apply).
 * 3. How to publish and consume.
 *
 * Ctrl-C stops the bridge (gracefully) and the Kafka it started.
 */
import { Bridge } from '../src/bridge.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/observability/logger.js';
import { useOrStartKafka } from './kafka/use-or-start.js';

function instructions(
  mqttPort: number,
  websocket: string,
  httpPort: number,
  brokers: string,
  anonymous: boolean,
): string {
  const publish = `-h localhost -p ${mqttPort} -t devices/dev1/telemetry/temp -m '{"celsius":21.5}' -q 1`;
  return `
  mqtt-kafka-bridge is running.
    MQTT     mqtt://localhost:${mqttPort}   (MQTT 3.1, 3.1.1 and 5.0)
    WebSock  ${websocket}
    Kafka    ${brokers}
    Health   http://localhost:${httpPort}/health/ready    Metrics  http://localhost:${httpPort}/metrics
    Rules    mappings/example.yaml
    Access   ${anonymous ? 'anyone may connect, no users (auth.allowAnonymous: development only)' : 'as configured (auth.file, or loopback clients only)'}

  Publish a reading as device dev1:
    npx mqtt pub ${publish}
    mosquitto_pub ${publish}

  See it in Kafka (topic iot.telemetry, key dev1):
    npm run consume -- iot.telemetry --from-beginning
    kcat -b ${brokers} -C -t iot.telemetry -f 'key=%k headers=%h value=%s\\n'

  Ctrl-C stops the bridge${brokers === process.env.BRIDGE_KAFKA_BROKERS ? '' : ' and the Kafka it started'}.
`;
}

async function main(): Promise<void> {
  const kafka = await useOrStartKafka();
  const stopKafka = async (): Promise<void> => {
    await kafka.started?.stop();
  };
  try {
    const config = loadConfig({
      overrides: {
        kafka: {
          brokers: kafka.brokers.split(','),
          // development: the rules' fixed topics are created at start (the bridge never has
          // Kafka auto-create a topic a device names); BRIDGE_KAFKA_CREATE_TOPICS=false turns it off
          createTopics: process.env.BRIDGE_KAFKA_CREATE_TOPICS !== 'false',
        },
        // development: devices on the network may connect without users (BRIDGE_AUTH_FILE or
        // BRIDGE_AUTH_ALLOW_ANONYMOUS=false: as in production)
        auth: {
          allowAnonymous:
            process.env.BRIDGE_AUTH_FILE === undefined &&
            process.env.BRIDGE_AUTH_ALLOW_ANONYMOUS !== 'false',
        },
        log: {
          level: process.env.BRIDGE_LOG_LEVEL ?? 'info',
          pretty: process.env.BRIDGE_LOG_PRETTY !== 'false',
        },
      },
    });
    const bridge = await Bridge.start(config, createLogger(config.log));
    console.error(
      instructions(
        bridge.addresses.mqtt.port,
        bridge.addresses.websocket
          ? `ws://localhost:${bridge.addresses.websocket.port}${config.websocket.path}`
          : 'off',
        bridge.addresses.http.port,
        kafka.brokers,
        config.auth.allowAnonymous,
      ),
    );
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      bridge
        .stop()
        .then(stopKafka)
        .then(
          () => process.exit(0),
          (error: unknown) => {
            console.error(error);
            process.exit(1);
          },
        );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  } catch (error) {
    await stopKafka();
    throw error;
  }
}

main().catch((error: unknown) => {
  console.error(`npm run dev: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

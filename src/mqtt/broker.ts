import type { Duplex } from 'node:stream';
import type { IConnectPacket } from 'mqtt-packet';
import type { UplinkPublish } from '../rules/types.js';
import type { Logger } from '../observability/logger.js';
import type { BridgeMetrics } from '../observability/metrics.js';
import { Connection, type ConnectionOptions } from './connection.js';
import { ReasonCode } from './reason-codes.js';
import type { UplinkOutcome, UplinkSink } from './uplink-sink.js';

type Will = NonNullable<IConnectPacket['will']>;

/**
 * The MQTT broker core: every connection, the client-id registry, and the
 * path from a publish to the uplink. Listeners hand it sockets.
 */
export class Broker {
  readonly log: Logger;
  readonly metrics: BridgeMetrics;
  readonly #sink: UplinkSink;
  readonly #options: ConnectionOptions;
  readonly #connections = new Set<Connection>();
  /** The current connection of each client id [MQTT-3.1.4-2]. */
  readonly #clients = new Map<string, Connection>();

  constructor(sink: UplinkSink, options: ConnectionOptions, log: Logger, metrics: BridgeMetrics) {
    this.#sink = sink;
    this.#options = options;
    this.log = log;
    this.metrics = metrics;
  }

  /** Number of connections that completed CONNECT. */
  get clientCount(): number {
    return this.#clients.size;
  }

  accept(socket: Duplex, remoteAddress: string): Connection {
    const connection = new Connection(socket, remoteAddress, this, this.#options);
    this.#connections.add(connection);
    return connection;
  }

  /** A CONNECT was accepted. A connection with the same client id is taken over. */
  register(connection: Connection): void {
    const previous = this.#clients.get(connection.clientId);
    if (previous) {
      // [MQTT-3.1.4-2] the existing connection is closed; MQTT 5 says why (0x8E)
      previous.close('session taken over', ReasonCode.SessionTakenOver);
    }
    this.#clients.set(connection.clientId, connection);
    this.metrics.mqttConnections.set(this.#clients.size);
    this.metrics.mqttConnectionsTotal.inc();
  }

  connectionClosed(connection: Connection, will: Will | undefined): void {
    this.#connections.delete(connection);
    if (this.#clients.get(connection.clientId) === connection) {
      this.#clients.delete(connection.clientId);
      this.metrics.mqttConnections.set(this.#clients.size);
    }
    if (will) this.#publishWill(connection, will);
  }

  publish(publish: UplinkPublish, onSettled: ((outcome: UplinkOutcome) => void) | undefined): void {
    this.#sink.send(publish, onSettled);
  }

  /** Shutdown, first step: no connection reads any more input. */
  stopReading(): void {
    for (const connection of this.#connections) connection.stopReading();
  }

  /** Closes every connection; MQTT 5 clients get DISCONNECT with the reason code. */
  disconnectAll(reason: string, reasonCode: number): void {
    for (const connection of this.#connections) connection.close(reason, reasonCode);
  }

  /** [MQTT-3.1.2-8] the will is published when the connection ends without DISCONNECT. */
  #publishWill(connection: Connection, will: Will): void {
    const userProperties = Object.entries(will.properties?.userProperties ?? {}).flatMap(
      ([name, value]) =>
        (Array.isArray(value) ? value : [value]).map((item) => [name, item] as [string, string]),
    );
    this.publish(
      {
        topic: will.topic,
        payload: typeof will.payload === 'string' ? Buffer.from(will.payload) : will.payload,
        qos: will.qos ?? 0,
        retain: will.retain ?? false,
        clientId: connection.clientId,
        username: connection.username,
        userProperties,
      },
      (outcome) => {
        if (outcome.kind === 'failed') {
          this.log.warn(
            { clientId: connection.clientId, reason: outcome.reason },
            'will not stored',
          );
        }
      },
    );
  }
}

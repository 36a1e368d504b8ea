import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { TlsOptions } from 'node:tls';
import type { BridgeConfig } from '../../config/load.js';
import { BridgeError } from '../../errors.js';
import type { Broker } from '../broker.js';
import { TcpListener } from './tcp.js';
import { WebSocketListener } from './websocket.js';

/** Bound addresses of the MQTT listeners; optional ones are absent when disabled. */
export interface ListenerAddresses {
  mqtt: AddressInfo;
  websocket?: AddressInfo;
  mqtts?: AddressInfo;
  wss?: AddressInfo;
}

interface Listener {
  name: keyof ListenerAddresses;
  server: { listen(host: string, port: number): Promise<AddressInfo>; close(): Promise<void> };
  host: string;
  port: number;
}

type ListenerConfig = Pick<BridgeConfig, 'mqtt' | 'websocket' | 'mqtts' | 'wss' | 'tls'>;

/**
 * Every way in for MQTT clients: TCP, WebSocket, TLS and secure WebSocket,
 * each as configured; all feed the same broker.
 */
export class ListenerSet {
  readonly #listeners: Listener[];

  /** Throws a BridgeError naming the option when a TLS file cannot be read. */
  constructor(broker: Broker, config: ListenerConfig) {
    const tls = config.mqtts.enabled || config.wss.enabled ? tlsOptions(config.tls) : undefined;
    const { maxPacketSize } = config.mqtt;
    const { path } = config.websocket;
    const { identity } = config.tls;
    this.#listeners = [
      { name: 'mqtt', server: new TcpListener(broker), ...config.mqtt },
      ...(config.websocket.enabled
        ? [
            {
              name: 'websocket' as const,
              server: new WebSocketListener(broker, { path, maxPacketSize }),
              ...config.websocket,
            },
          ]
        : []),
      ...(config.mqtts.enabled
        ? [
            {
              name: 'mqtts' as const,
              server: new TcpListener(broker, tls, identity),
              ...config.mqtts,
            },
          ]
        : []),
      ...(config.wss.enabled
        ? [
            {
              name: 'wss' as const,
              server: new WebSocketListener(broker, { path, maxPacketSize, tls, identity }),
              ...config.wss,
            },
          ]
        : []),
    ];
  }

  /** Starts every listener; on failure the ones started are closed again. */
  async listen(): Promise<ListenerAddresses> {
    const addresses: Partial<ListenerAddresses> = {};
    try {
      for (const { name, server, host, port } of this.#listeners) {
        addresses[name] = await server.listen(host, port);
      }
    } catch (error) {
      await this.close();
      throw error;
    }
    return addresses as ListenerAddresses;
  }

  /** Stops accepting connections; open connections are left to the broker. */
  async close(): Promise<void> {
    await Promise.all(this.#listeners.map(({ server }) => server.close()));
  }
}

/** Certificate, key and client-certificate policy, read once at start. */
function tlsOptions(tls: BridgeConfig['tls']): TlsOptions {
  return {
    cert: readOption(tls.certFile, 'tls.certFile', 'BRIDGE_TLS_CERT_FILE'),
    key: readOption(tls.keyFile, 'tls.keyFile', 'BRIDGE_TLS_KEY_FILE'),
    ...(tls.caFile !== ''
      ? { ca: readOption(tls.caFile, 'tls.caFile', 'BRIDGE_TLS_CA_FILE') }
      : {}),
    // with an identity from certificates, one is asked for; only verified ones count
    requestCert: tls.requireClientCert || tls.identity !== 'none',
    rejectUnauthorized: tls.requireClientCert,
  };
}

function readOption(path: string, option: string, env: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new BridgeError(
      'CONFIG_INVALID',
      `cannot read ${option} (env ${env}) "${path}": ${(error as Error).message}`,
      { cause: error },
    );
  }
}

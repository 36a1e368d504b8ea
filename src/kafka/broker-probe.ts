import { connect, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { tlsOptionsFor } from './security.js';

/** Kafka API key of ApiVersions, the request every client sends first. */
const API_VERSIONS = 18;

/**
 * An ApiVersions v0 request: size, api key, api version, correlation id, client id. Every
 * Kafka answers it (with an error and its versions when it does not speak v0 any more).
 */
function apiVersionsRequest(correlationId: number): Buffer {
  const clientId = Buffer.from('mqtt-kafka-bridge-probe');
  const request = Buffer.alloc(4 + 2 + 2 + 4 + 2 + clientId.length);
  let offset = request.writeInt32BE(request.length - 4, 0);
  offset = request.writeInt16BE(API_VERSIONS, offset);
  offset = request.writeInt16BE(0, offset);
  offset = request.writeInt32BE(correlationId, offset);
  offset = request.writeInt16BE(clientId.length, offset);
  clientId.copy(request, offset);
  return request;
}

export interface ProbeOptions {
  intervalMs?: number;
  timeoutMs?: number;
  ssl?: ConnectionOptions | undefined;
}

/**
 * Whether Kafka answers, for the readiness endpoint when no records flow:
 * every `intervalMs` an ApiVersions request goes to the bootstrap brokers in
 * turn, on a new connection; reachable when one answers within `timeoutMs`.
 * A broker that accepts connections but does not answer (stalled, paused,
 * a proxy in front of a dead one) is not reachable.
 */
export class BrokerProbe {
  readonly #brokers: Array<{ host: string; port: number }>;
  readonly #timeoutMs: number;
  readonly #timer: NodeJS.Timeout;
  readonly #ssl: ConnectionOptions | undefined;
  #reachable = true;
  #correlationId = 0;

  /** `ssl`: TLS options when Kafka's listener is TLS (the probe needs no SASL: ApiVersions comes first). */
  constructor(
    brokers: string[],
    { intervalMs = 5_000, timeoutMs = 2_000, ssl }: ProbeOptions = {},
  ) {
    this.#ssl = ssl;
    this.#brokers = brokers.map((broker) => {
      const colon = broker.lastIndexOf(':');
      return { host: broker.slice(0, colon), port: Number(broker.slice(colon + 1)) };
    });
    this.#timeoutMs = timeoutMs;
    this.#timer = setInterval(() => {
      void this.#probe();
    }, intervalMs).unref();
  }

  get reachable(): boolean {
    return this.#reachable;
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #probe(): Promise<void> {
    for (const broker of this.#brokers) {
      if (await this.#answers(broker)) {
        this.#reachable = true;
        return;
      }
    }
    this.#reachable = false;
  }

  #answers({ host, port }: { host: string; port: number }): Promise<boolean> {
    const correlationId = (this.#correlationId = (this.#correlationId + 1) & 0x7fffffff);
    return new Promise((resolve) => {
      const socket: Socket = this.#ssl
        ? connectTls({ ...tlsOptionsFor(this.#ssl, host), port })
        : connect({ host, port });
      let received = Buffer.alloc(0);
      const done = (answered: boolean): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve(answered);
      };
      const timer = setTimeout(() => {
        done(false);
      }, this.#timeoutMs);
      socket.once(this.#ssl ? 'secureConnect' : 'connect', () => {
        socket.write(apiVersionsRequest(correlationId));
      });
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        // size, then the correlation id of the request
        if (received.length >= 8) done(received.readInt32BE(4) === correlationId);
      });
      socket.once('error', () => {
        done(false);
      });
      socket.once('close', () => {
        done(false);
      });
    });
  }
}

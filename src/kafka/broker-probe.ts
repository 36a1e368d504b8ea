import { connect } from 'node:net';

/**
 * Whether Kafka answers, for the readiness endpoint when no records flow:
 * every `intervalMs` a TCP connection is tried to the bootstrap brokers in
 * turn; reachable when one accepts within `timeoutMs`.
 */
export class BrokerProbe {
  readonly #brokers: Array<{ host: string; port: number }>;
  readonly #timeoutMs: number;
  readonly #timer: NodeJS.Timeout;
  #reachable = true;

  constructor(brokers: string[], { intervalMs = 5_000, timeoutMs = 2_000 } = {}) {
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
      if (await this.#accepts(broker)) {
        this.#reachable = true;
        return;
      }
    }
    this.#reachable = false;
  }

  #accepts({ host, port }: { host: string; port: number }): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect({ host, port, timeout: this.#timeoutMs });
      const done = (accepted: boolean): void => {
        socket.destroy();
        resolve(accepted);
      };
      socket.once('connect', () => {
        done(true);
      });
      socket.once('timeout', () => {
        done(false);
      });
      socket.once('error', () => {
        done(false);
      });
    });
  }
}

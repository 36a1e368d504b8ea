import type { Producer } from 'kafkajs';

/**
 * Whether the producer in use is connected to Kafka, and what keeps it from being so: the
 * readiness endpoint's view of the Kafka connection.
 */
export class KafkaConnectionState {
  #connected = false;
  /** Why Kafka does not take the bridge (refused credentials, untrusted certificate). */
  problem: string | undefined;
  /** The broker that last refused the bridge's credentials. */
  refusedBy: string | undefined;

  get connected(): boolean {
    return this.#connected;
  }

  /** Follows `producer`'s connects and disconnects (the pipeline may replace the producer). */
  follow(producer: Producer): void {
    producer.on(producer.events.CONNECT, () => {
      this.#connected = true;
      this.problem = undefined;
    });
    producer.on(producer.events.DISCONNECT, () => {
      this.#connected = false;
    });
  }
}

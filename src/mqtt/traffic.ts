/**
 * What crossed the bridge's MQTT sockets since start, for `$SYS/broker/...` (see sys-topics.ts).
 * Plain number fields that connections bump as bytes and packets pass: nothing on the message
 * path costs more than an increment, and the publisher reads them once per `sys.interval`.
 */
export class Traffic {
  /** Bytes read from client sockets, counted per chunk. */
  bytesReceived = 0;
  /** Bytes written to client sockets, counted per write. */
  bytesSent = 0;
  /** MQTT packets of every type received. */
  packetsReceived = 0;
  /** MQTT packets of every type sent. */
  packetsSent = 0;
  /** PUBLISH packets received (refused ones too, as Mosquitto counts them). */
  publishesReceived = 0;
  /**
   * PUBLISH packets taken in by QoS: past the checks, a retransmitted QoS 2 not again
   * (bridge_mqtt_publishes_received_total).
   */
  readonly publishesTakenByQos: [number, number, number] = [0, 0, 0];
  /** PUBLISH packets sent. */
  publishesSent = 0;
  /** CONNECT packets received (refused ones too). */
  connectsReceived = 0;
  /** Sockets accepted by the listeners. */
  socketsAccepted = 0;
}

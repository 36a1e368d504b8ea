import type { Connection } from '../connection.js';

/** [MQTT-3.12.4-1] answer PINGREQ with PINGRESP. */
export function handlePingreq(connection: Connection): void {
  connection.send({ cmd: 'pingresp' });
}

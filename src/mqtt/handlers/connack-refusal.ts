import type { Connection } from '../connection.js';
import { ConnackReturnCode, ReasonCode } from '../reason-codes.js';

/** How a CONNECT is refused; without a v3 code, a 3.1/3.1.1 client is just disconnected. */
export interface Refusal {
  v3: number | undefined;
  v5: number;
  reason: string;
  /** MQTT 5 Server Reference for 0x9C / 0x9D. */
  serverReference?: string;
  /**
   * Already counted and logged (at most once a minute, see LimitRefusals): no line per
   * connection, which a flood of them would turn into a flood of lines.
   */
  reported?: boolean;
}

/** CONNACK for failed authentication: 0x86 / 0x04 for bad credentials, 0x87 / 0x05 otherwise. */
export function authenticationRefusal(reason: 'bad-credentials' | 'not-authorized'): Refusal {
  return reason === 'bad-credentials'
    ? {
        v3: ConnackReturnCode.BadUserNameOrPassword,
        v5: ReasonCode.BadUserNameOrPassword,
        reason: 'bad user name or password',
      }
    : {
        v3: ConnackReturnCode.NotAuthorized,
        v5: ReasonCode.NotAuthorized,
        reason: 'not authorized',
      };
}

/** [MQTT-3.2.2-5] a refused CONNECT gets a CONNACK with the reason, then the connection closes. */
export function refuse(connection: Connection, refusal: Refusal): void {
  if (refusal.v5 === ReasonCode.BadUserNameOrPassword || refusal.v5 === ReasonCode.NotAuthorized) {
    connection.broker.metrics.mqttAuthenticationFailures.inc();
  }
  const v5 = connection.protocolVersion === 5;
  if (!v5 && refusal.v3 === undefined) {
    connection.close(refusal.reason);
    return;
  }
  connection.send({
    cmd: 'connack',
    sessionPresent: false,
    ...(v5
      ? {
          reasonCode: refusal.v5,
          properties: {
            reasonString: refusal.reason,
            ...(refusal.serverReference !== undefined
              ? { serverReference: refusal.serverReference }
              : {}),
          },
        }
      : { returnCode: refusal.v3 }),
  });
  if (refusal.reported !== true) {
    connection.log.info(
      { clientId: connection.clientId, reason: refusal.reason },
      'CONNECT refused',
    );
  }
  connection.close(refusal.reason);
}

import type { IPublishPacket, Packet, QoS } from 'mqtt-packet';
import { ackCode, type AckReply, type Connection } from '../connection.js';
import {
  expiryFrom,
  pickMessageProperties,
  type BrokerMessage,
  type MessageProperties,
} from '../message.js';
import { parseDelayedTopic } from '../delayed.js';
import { ReasonCode, publishAckReasonCode } from '../reason-codes.js';
import { topicNameProblem } from '../topic-name.js';
import { topicOverLimit } from '../topic-limits.js';
import { isSysTopic } from '../../rules/mqtt-topic-name.js';
import type { UplinkOutcome } from '../uplink-sink.js';

/**
 * A client's PUBLISH goes to local subscribers and to the uplink. QoS 1 is
 * answered with PUBACK and QoS 2 with PUBREC only once Kafka holds every
 * record it maps to.
 */
export function handlePublish(connection: Connection, packet: IPublishPacket): void {
  const topic = resolveTopic(connection, packet);
  if (topic === undefined) return;

  const id = packet.messageId ?? 0;
  const session = connection.session;
  const overLimit = topicOverLimit(topic, connection.options);
  if (overLimit !== undefined && !session.qos2Received.has(id)) {
    connection.broker.refusals.refuse(
      overLimit,
      { clientId: connection.clientId, topic: topic.slice(0, 200) },
      'publish refused',
    );
    refusePublish(connection, packet.qos, id, ReasonCode.TopicNameInvalid);
    return;
  }
  if (
    packet.qos > 0 &&
    connection.protocolVersion === 5 &&
    connection.acks.pending >= connection.options.receiveMaximum
  ) {
    // [MQTT-3.3.4-9] more unacknowledged QoS 1/2 publishes than Receive Maximum
    connection.protocolViolation(ReasonCode.ReceiveMaximumExceeded, 'receive maximum exceeded');
    return;
  }
  if (packet.qos === 1 && session.qos2Received.has(id)) {
    // the id still belongs to an unfinished QoS 2 exchange [MQTT-2.2.1-3]
    refuseInUse(connection, id);
    return;
  }
  const target = aclTopic(topic);
  // $SYS/ is the bridge's own tree: no client publishes there, whatever its ACL says
  if (
    (!connection.permissions.canPublish(target) || isSysTopic(target)) &&
    !session.qos2Received.has(id)
  ) {
    refuseUnauthorized(connection, packet.qos, id, topic);
    return;
  }
  if (packet.qos === 2) {
    const state = session.qos2Received.get(id);
    if (state !== undefined) {
      // [MQTT-4.3.3-10] a retransmission before PUBREL is not delivered again.
      // It is answered here, in its place: at once if Kafka has the message,
      // else when Kafka settles (the first copy may have come on an older connection).
      const reply = connection.acks.reserve();
      if (state === 'stored') {
        reply(() => {
          connection.send({ cmd: 'pubrec', messageId: id });
        });
      } else {
        const waiting = session.qos2Waiting.get(id) ?? [];
        waiting.push((outcome) => {
          reply(() => {
            acknowledge(connection, 2, id, outcome);
          });
        });
        session.qos2Waiting.set(id, waiting);
      }
      return;
    }
    session.qos2Received.set(id, 'producing');
  }
  connection.broker.traffic.publishesTakenByQos[packet.qos]++;

  const message = toMessage(connection, packet, topic);
  if (packet.qos === 0) {
    connection.broker.publish(message, undefined);
    return;
  }
  const qos = packet.qos;
  const ticket = connection.acks.take();
  // one publish in 8 is timed for bridge_mqtt_puback_seconds (-1: not this one)
  const readAt = (++pubackSample & 7) === 0 ? performance.now() : -1;
  connection.broker.publish(message, (outcome) => {
    if (qos === 2 && outcome.kind !== 'failed') {
      // the id is kept with the session before PUBREC: a retransmission after a restart is
      // then known not to be new [MQTT-4.3.3-10]
      session.qos2Received.set(id, 'stored');
      connection.broker.sessionChanged(session, () => {
        answer(connection, session, ticket, qos, id, outcome, readAt);
      });
    } else {
      answer(connection, session, ticket, qos, id, outcome, readAt);
    }
  });
  connection.throttleIfBusy();
}

/**
 * A QoS 1/2 publish's PUBACK/PUBREC goes out in its place; a QoS 2 retransmission waiting for
 * the first copy's outcome is answered with it. `readAt`: when the publish was read, for the
 * PUBACK latency histogram (-1: not timed). A function of its own, not a closure per publish.
 */
function answer(
  connection: Connection,
  session: Connection['session'],
  ticket: number,
  qos: 1 | 2,
  id: number,
  outcome: UplinkOutcome,
  readAt: number,
): void {
  connection.acks.settle(ticket, reply(connection, qos, id, outcome));
  if (readAt >= 0) {
    connection.broker.metrics.mqttPubackSeconds.observe((performance.now() - readAt) / 1000);
  }
  if (qos === 2) {
    const waiting = session.qos2Waiting.get(id) ?? [];
    session.qos2Waiting.delete(id);
    for (const answerWaiting of waiting) answerWaiting(outcome);
  }
}

/** Counts QoS 1/2 publishes, to time one in 8. */
let pubackSample = 0;

/** The topic the ACL judges: a `$delay/{seconds}/{topic}` publish is one to `{topic}`. */
function aclTopic(topic: string): string {
  const delayed = parseDelayedTopic(topic);
  return delayed !== undefined && 'topic' in delayed ? delayed.topic : topic;
}

/**
 * A publish the ACL does not allow is not delivered. MQTT 5 says so with 0x87
 * on PUBACK/PUBREC; MQTT 3.1.1 has no way to, so it is acknowledged as usual
 * and dropped, as Mosquitto does [MQTT-3.3.5-2].
 */
function refuseUnauthorized(connection: Connection, qos: QoS, id: number, topic: string): void {
  connection.broker.metrics.mqttPublishesDenied.inc();
  connection.log.debug({ clientId: connection.clientId, topic }, 'publish not authorized');
  refusePublish(connection, qos, id, ReasonCode.NotAuthorized);
}

/**
 * A publish refused before it goes anywhere: MQTT 5 hears the reason code on PUBACK/PUBREC;
 * MQTT 3.1.1 has no way to be told, so it is acknowledged as usual and dropped (a retransmission
 * would meet the same refusal) [MQTT-3.3.5-2]. QoS 0 is dropped.
 */
function refusePublish(connection: Connection, qos: QoS, id: number, reasonCode: number): void {
  if (qos === 0) return;
  const v5 = connection.protocolVersion === 5;
  // On 3.1.1 the QoS 2 exchange goes on to PUBREL/PUBCOMP like any other.
  if (qos === 2 && !v5) connection.session.qos2Received.set(id, 'stored');
  connection.acks.reserve()(() => {
    connection.send(ack(qos, id, v5 ? { reasonCode } : {}));
  });
}

/** MQTT 5: PUBACK 0x91 (Packet Identifier in use); 3.1.1 has no way to say it: close. */
function refuseInUse(connection: Connection, id: number): void {
  if (connection.protocolVersion !== 5) {
    connection.close(`packet identifier ${id} reused while its QoS 2 exchange is open`);
    return;
  }
  connection.acks.reserve()(() => {
    connection.send({ cmd: 'puback', messageId: id, reasonCode: ReasonCode.PacketIdentifierInUse });
  });
}

/** The properties of a message without any (MQTT 3.1.1): one object, never changed. */
const NO_PROPERTIES: MessageProperties = Object.freeze({});

function toMessage(connection: Connection, packet: IPublishPacket, topic: string): BrokerMessage {
  const { properties } = packet;
  return {
    topic,
    payload: typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload,
    qos: packet.qos,
    retain: packet.retain,
    properties: properties === undefined ? NO_PROPERTIES : pickMessageProperties(properties),
    expiresAt:
      properties?.messageExpiryInterval === undefined
        ? undefined
        : expiryFrom(properties.messageExpiryInterval, Date.now()),
    origin: connection.origin,
  };
}

/** MQTT 5 topic aliases [MQTT-3.3.2-7..12]; undefined when the connection was closed. */
function resolveTopic(connection: Connection, packet: IPublishPacket): string | undefined {
  let topic = packet.topic;
  const alias = packet.properties?.topicAlias;
  if (alias !== undefined) {
    if (alias === 0 || alias > connection.options.topicAliasMaximum) {
      connection.protocolViolation(
        ReasonCode.TopicAliasInvalid,
        `topic alias ${alias} out of range`,
      );
      return undefined;
    }
    if (topic === '') {
      const known = connection.topicAliases.get(alias);
      if (known === undefined) {
        connection.protocolViolation(ReasonCode.ProtocolError, `unknown topic alias ${alias}`);
        return undefined;
      }
      topic = known;
    } else {
      connection.topicAliases.set(alias, topic);
    }
  }
  const problem = topicNameProblem(topic);
  if (problem !== undefined) {
    connection.protocolViolation(ReasonCode.TopicNameInvalid, problem);
    return undefined;
  }
  return topic;
}

/**
 * What answers a settled publish in its place in line: a plain acknowledgement as its code (no
 * closure, no packet), else a function that answers as `acknowledge` says.
 */
function reply(
  connection: Connection,
  qos: Exclude<QoS, 0>,
  id: number,
  outcome: UplinkOutcome,
): AckReply {
  if (
    outcome.kind === 'stored' ||
    (outcome.kind === 'unmatched' && connection.protocolVersion !== 5)
  ) {
    if (qos === 1) return ackCode('puback', id);
  }
  return () => {
    acknowledge(connection, qos, id, outcome);
  };
}

function acknowledge(
  connection: Connection,
  qos: Exclude<QoS, 0>,
  id: number,
  outcome: UplinkOutcome,
): void {
  const v5 = connection.protocolVersion === 5;
  const session = connection.session;
  if (outcome.kind === 'failed' && !v5 && outcome.final === true) {
    // A decision, not a Kafka failure: 3.1.1 cannot be told, and a retransmission
    // would meet the same fate, so the publish is acknowledged (and was dropped,
    // or stored on the dead-letter topic) [MQTT-3.3.5-2].
    if (qos === 2) session.qos2Received.set(id, 'stored');
    connection.send(ack(qos, id, {}));
    return;
  }
  if (outcome.kind === 'failed') {
    if (qos === 2) session.qos2Received.delete(id);
    if (!v5) {
      // MQTT 3.1.1 cannot refuse a publish; acknowledging would be a lie, so
      // the connection is closed and the client retransmits after reconnecting.
      connection.close(`publish ${id} not stored in Kafka: ${outcome.reason}`);
      return;
    }
    // [MQTT-3.1.2-29] no reason string for a client that asked for no problem information
    const details = connection.problemInformation
      ? { properties: { reasonString: outcome.reason } }
      : {};
    connection.send(
      ack(qos, id, { reasonCode: publishAckReasonCode(outcome.reasonCode), ...details }),
    );
    return;
  }
  if (qos === 2) session.qos2Received.set(id, 'stored');
  // MQTT 5 tells the publisher when nobody received the message.
  const unmatched = v5 && outcome.kind === 'unmatched';
  connection.send(ack(qos, id, unmatched ? { reasonCode: ReasonCode.NoMatchingSubscribers } : {}));
}

function ack(
  qos: Exclude<QoS, 0>,
  messageId: number,
  extra: { reasonCode?: number; properties?: { reasonString: string } },
): Packet {
  return qos === 1
    ? { cmd: 'puback', messageId, ...extra }
    : { cmd: 'pubrec', messageId, ...extra };
}

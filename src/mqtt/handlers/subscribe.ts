import type { ISubscribePacket, IUnsubscribePacket } from 'mqtt-packet';
import type { Broker } from '../broker.js';
import type { Connection } from '../connection.js';
import { ReasonCode } from '../reason-codes.js';
import type { Subscription } from '../session.js';
import { topicOverLimit } from '../topic-limits.js';
import { parseTopicFilter } from '../topic-tree.js';

/** SUBACK failure code: 0x80 on 3.1.1 [MQTT-3.9.3-2], Topic Filter invalid (0x8F) on MQTT 5. */
const INVALID_FILTER = { v3: 0x80, v5: 0x8f } as const;

/**
 * SUBSCRIBE: each filter is added (replacing an identical one [MQTT-3.8.4-3]),
 * SUBACK grants the requested QoS once the session is kept, then retained messages are sent
 * as each subscription's Retain Handling says [MQTT-3.3.1-9..11].
 */
export function handleSubscribe(connection: Connection, packet: ISubscribePacket): void {
  const { broker, session } = connection;
  const v5 = connection.protocolVersion === 5;
  const identifier = packet.properties?.subscriptionIdentifier;
  if (identifier === 0) {
    // [MQTT-3.8.2-...] a Subscription Identifier of 0 is a protocol error
    connection.protocolViolation(ReasonCode.ProtocolError, 'subscription identifier 0');
    return;
  }
  const granted: number[] = [];
  const retainedToSend: Array<{ filter: string; subscription: Subscription }> = [];
  const requests = packet.subscriptions.map((request) => ({
    request,
    parsed: parseTopicFilter(request.topic),
  }));
  // Checked before anything is applied: a refused packet leaves the session as it was.
  const sharedNoLocal = requests.some(
    ({ request, parsed }) =>
      !('problem' in parsed) && parsed.shareGroup !== undefined && request.nl,
  );
  if (sharedNoLocal) {
    // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error
    connection.protocolViolation(ReasonCode.ProtocolError, 'No Local on a shared subscription');
    return;
  }
  for (const { request, parsed } of requests) {
    if ('problem' in parsed) {
      granted.push(v5 ? INVALID_FILTER.v5 : INVALID_FILTER.v3);
      continue;
    }
    const overLimit =
      topicOverLimit(request.topic, connection.options, parsed.filter) ??
      (session.subscriptions.size >= connection.options.maxSubscriptionsPerClient &&
      !session.subscriptions.has(request.topic)
        ? 'mqtt.maxSubscriptionsPerClient'
        : undefined);
    if (overLimit !== undefined) {
      broker.refusals.refuse(
        overLimit,
        { clientId: connection.clientId, filter: request.topic.slice(0, 200) },
        'subscription refused',
      );
      const quota = overLimit === 'mqtt.maxSubscriptionsPerClient';
      granted.push(v5 ? (quota ? ReasonCode.QuotaExceeded : INVALID_FILTER.v5) : INVALID_FILTER.v3);
      continue;
    }
    if (!connection.permissions.canSubscribe(request.topic)) {
      broker.metrics.mqttSubscriptionsDenied.inc();
      granted.push(v5 ? ReasonCode.NotAuthorized : INVALID_FILTER.v3);
      continue;
    }
    const shared = parsed.shareGroup !== undefined;
    const subscription: Subscription = {
      qos: request.qos,
      noLocal: request.nl ?? false,
      retainAsPublished: request.rap ?? false,
      retainHandling: (request.rh ?? 0) as Subscription['retainHandling'],
      identifier,
    };
    const existed = broker.subscriptions.subscribe(
      connection.clientId,
      request.topic,
      subscription,
    );
    session.subscribe(request.topic, subscription);
    granted.push(request.qos);
    // [MQTT-4.8.2-...] retained messages are not sent to shared subscriptions
    const wantsRetained =
      subscription.retainHandling === 0 || (subscription.retainHandling === 1 && !existed);
    if (!shared && wantsRetained) retainedToSend.push({ filter: parsed.filter, subscription });
  }
  // SUBACK once the subscriptions are kept with the session (at once in memory): an
  // acknowledged subscription survives a restart [MQTT-3.8.4-...: PUBLISH may come first]
  broker.sessionChanged(session, () => {
    connection.send({ cmd: 'suback', messageId: packet.messageId ?? 0, granted });
    for (const { filter, subscription } of retainedToSend)
      sendRetained(connection, broker, filter, subscription);
  });
}

/**
 * The session sends the matched messages as the client reads them, checking each against the
 * client's read rights when it goes: a `#` subscription over a large retained set is delivered
 * whole, not cut at the write buffer and the queue.
 */
function sendRetained(
  connection: Connection,
  broker: Broker,
  filter: string,
  subscription: Subscription,
): void {
  const { retained, sysRetained } = broker;
  const now = Date.now();
  connection.session.replayRetained(retained, retained.match(filter, now), subscription);
  // the $SYS/ values are kept apart (Broker.publishSys); only a filter starting with `$` matches them
  if (filter.startsWith('$')) {
    connection.session.replayRetained(sysRetained, sysRetained.match(filter, now), subscription);
  }
}

/** UNSUBSCRIBE: one reason code per filter on MQTT 5 [MQTT-3.11.3-1]. */
export function handleUnsubscribe(connection: Connection, packet: IUnsubscribePacket): void {
  const codes = packet.unsubscriptions.map((filter) => {
    if ('problem' in parseTopicFilter(filter)) return INVALID_FILTER.v5;
    const existed = connection.broker.subscriptions.unsubscribe(connection.clientId, filter);
    connection.session.unsubscribe(filter);
    return existed ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted;
  });
  connection.broker.sessionChanged(connection.session);
  connection.send({
    cmd: 'unsuback',
    messageId: packet.messageId ?? 0,
    // 3.1.1's UNSUBACK carries no reason codes
    granted: connection.protocolVersion === 5 ? codes : [],
  });
}

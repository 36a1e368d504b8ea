import type { ClientSnapshot } from '../mqtt/broker.js';
import { NEVER_EXPIRES, type Subscription } from '../mqtt/session.js';
import { parseTopicFilter } from '../mqtt/topic-tree.js';
import { ApiError } from './http-io.js';

/*
 * The JSON the admin API shows of clients and subscriptions, built from the broker's snapshots,
 * and the filters of their lists. Times are ISO 8601 strings; what does not apply is null.
 */

export interface ClientView {
  clientId: string;
  username: string | null;
  connected: boolean;
  /** `host:port` the client connects from; null while not connected. */
  address: string | null;
  /** 3 (MQTT 3.1), 4 (3.1.1) or 5; null while not connected. */
  protocolVersion: 3 | 4 | 5 | null;
  /** Seconds (the server's, when it set one); null while not connected. */
  keepAlive: number | null;
  /** Clean Start (3.1.1: Clean Session) of the current connection; null while not connected. */
  cleanStart: boolean | null;
  /** Seconds the session outlives its connection; 4294967295: for ever. */
  sessionExpiryInterval: number;
  /** When a kept session ends unless its client comes back; null while connected, or never. */
  sessionExpiresAt: string | null;
  connectedAt: string | null;
  disconnectedAt: string | null;
  subscriptionCount: number;
  /** QoS 1/2 messages sent and not acknowledged yet. */
  inflight: number;
  /** Messages waiting to be sent (offline, or beyond the client's Receive Maximum). */
  queued: number;
}

export interface SubscriptionView {
  /** As the client sent it, `$share/{group}/` included. */
  filter: string;
  qos: 0 | 1 | 2;
  /** The group of a shared subscription (`$share/{group}/...`, `$queue/...`); else null. */
  shareGroup: string | null;
  options: {
    noLocal: boolean;
    retainAsPublished: boolean;
    retainHandling: 0 | 1 | 2;
    subscriptionIdentifier: number | null;
  };
}

export interface ClientDetail extends ClientView {
  subscriptions: SubscriptionView[];
}

/** A row of GET /api/subscriptions. */
export interface SubscriptionRow {
  clientId: string;
  filter: string;
  qos: 0 | 1 | 2;
  shareGroup: string | null;
}

export interface ClientFilters {
  clientId?: string;
  username?: string;
  address?: string;
  connected?: boolean;
}

function isoTime(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

export function clientView(snapshot: ClientSnapshot): ClientView {
  const { connection, sessionExpiry, disconnectedAt } = snapshot;
  const expires =
    connection === undefined && disconnectedAt !== undefined && sessionExpiry !== NEVER_EXPIRES
      ? disconnectedAt + sessionExpiry * 1000
      : undefined;
  return {
    clientId: snapshot.clientId,
    username: snapshot.username ?? null,
    connected: connection !== undefined,
    address: connection?.address ?? null,
    protocolVersion: connection?.protocolVersion ?? null,
    keepAlive: connection?.keepAlive ?? null,
    cleanStart: connection?.cleanStart ?? null,
    sessionExpiryInterval: sessionExpiry,
    sessionExpiresAt: isoTime(expires),
    connectedAt: isoTime(connection?.connectedAt),
    disconnectedAt: isoTime(connection === undefined ? disconnectedAt : undefined),
    subscriptionCount: snapshot.subscriptions.size,
    inflight: snapshot.inflight,
    queued: snapshot.queued,
  };
}

export function clientDetail(snapshot: ClientSnapshot): ClientDetail {
  const subscriptions = [...snapshot.subscriptions].map(([filter, subscription]) =>
    subscriptionView(filter, subscription),
  );
  return { ...clientView(snapshot), subscriptions };
}

function subscriptionView(filter: string, subscription: Subscription): SubscriptionView {
  return {
    filter,
    qos: subscription.qos,
    shareGroup: shareGroupOf(filter),
    options: {
      noLocal: subscription.noLocal,
      retainAsPublished: subscription.retainAsPublished,
      retainHandling: subscription.retainHandling,
      subscriptionIdentifier: subscription.identifier ?? null,
    },
  };
}

function shareGroupOf(filter: string): string | null {
  const parsed = parseTopicFilter(filter);
  return 'shareGroup' in parsed ? (parsed.shareGroup ?? null) : null;
}

/** `clientId`, `username`, `address` and `connected` of a query; a bad one is a 400. */
export function parseClientFilters(query: URLSearchParams): ClientFilters {
  const filters: ClientFilters = {};
  const clientId = query.get('clientId');
  const username = query.get('username');
  const address = query.get('address');
  const connected = query.get('connected');
  if (clientId !== null) filters.clientId = clientId;
  if (username !== null) filters.username = username;
  if (address !== null) filters.address = address;
  if (connected !== null) {
    if (connected !== 'true' && connected !== 'false') {
      throw new ApiError('BAD_REQUEST', 'connected must be true or false');
    }
    filters.connected = connected === 'true';
  }
  return filters;
}

/** `clientId` and `address` are prefixes; `username` is the whole name. */
export function clientMatches(snapshot: ClientSnapshot, filters: ClientFilters): boolean {
  if (filters.clientId !== undefined && !snapshot.clientId.startsWith(filters.clientId)) {
    return false;
  }
  if (filters.username !== undefined && snapshot.username !== filters.username) return false;
  const address = snapshot.connection?.address;
  if (filters.address !== undefined && !(address?.startsWith(filters.address) ?? false)) {
    return false;
  }
  return (
    filters.connected === undefined || filters.connected === (snapshot.connection !== undefined)
  );
}

/**
 * The subscriptions of the snapshots; `clientId`: of clients whose id starts with it; `topic`:
 * whose filter a message published to that topic name matches (a shared one: its filter
 * without the `$share/{group}/`).
 */
export function subscriptionRows(
  snapshots: readonly ClientSnapshot[],
  filters: { clientId?: string; topic?: string },
): SubscriptionRow[] {
  const rows: SubscriptionRow[] = [];
  for (const snapshot of snapshots) {
    const { clientId } = snapshot;
    if (filters.clientId !== undefined && !clientId.startsWith(filters.clientId)) continue;
    for (const [filter, { qos }] of snapshot.subscriptions) {
      const parsed = parseTopicFilter(filter);
      const matched = 'filter' in parsed ? parsed.filter : filter;
      if (filters.topic !== undefined && !filterMatchesTopic(matched, filters.topic)) continue;
      const shareGroup = 'shareGroup' in parsed ? (parsed.shareGroup ?? null) : null;
      rows.push({ clientId, filter, qos, shareGroup });
    }
  }
  return rows;
}

/** The paging key of a subscription row: client id, then filter (U+0000 is in neither). */
export function subscriptionKey(row: SubscriptionRow): string {
  return `${row.clientId}\u0000${row.filter}`;
}

/** Whether a message published to `topic` matches `filter` (no `$share/` prefix). */
export function filterMatchesTopic(filter: string, topic: string): boolean {
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  // [MQTT-4.7.2-1] a filter starting with a wildcard does not match topics starting with "$"
  const first = filterLevels[0];
  if (topic.startsWith('$') && (first === '+' || first === '#')) return false;
  for (const [index, level] of filterLevels.entries()) {
    // [MQTT-4.7.1-2] "#" matches the parent level too: "a/#" matches "a"
    if (level === '#') return true;
    const topicLevel = topicLevels[index];
    if (topicLevel === undefined) return false;
    if (level !== '+' && level !== topicLevel) return false;
  }
  return filterLevels.length === topicLevels.length;
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BridgeConfig } from '../config/load.js';
import type { MappingsReloader } from '../mappings-reloader.js';
import type { Broker } from '../mqtt/broker.js';
import { topicNameProblem } from '../mqtt/topic-name.js';
import type { UplinkOutcome } from '../mqtt/uplink-sink.js';
import type { Logger } from '../observability/logger.js';
import type { BridgeMetrics } from '../observability/metrics.js';
import { formatPosition } from '../rules/errors.js';
import { dryRunUplink, type UplinkDryRun } from '../rules/dry-run.js';
import type { Mappings } from '../rules/load.js';
import { BearerToken } from './admin-token.js';
import {
  clientDetail,
  clientMatches,
  clientView,
  parseClientFilters,
  subscriptionKey,
  subscriptionRows,
} from './client-views.js';
import { redactConfig } from './config-redaction.js';
import { ApiError, readJsonBody, sendError, sendJson, sendNoContent } from './http-io.js';
import { publishRequest, testRequest } from './message-request.js';
import { OPENAPI_DOCUMENT } from './openapi.js';
import { pageOf, parsePaging } from './paging.js';
import { rulesView } from './rule-views.js';
import { matchRoute, type OperationId, type RouteSpec } from './routes.js';

export interface AdminApiOptions {
  /** The bearer token; undefined: the API is off (every /api/ request is a 404 saying so). */
  token: string | undefined;
  broker: Broker;
  metrics: BridgeMetrics;
  config: BridgeConfig;
  /** The mappings in use now (a reload replaces them). */
  mappings: () => Mappings;
  reloader: Pick<MappingsReloader<Mappings>, 'reload'>;
  log: Logger;
}

interface Call {
  request: IncomingMessage;
  params: Record<string, string>;
  query: URLSearchParams;
}

/** What a handler answers: JSON with a status, or 204 No Content. */
type Reply = { status: number; body: unknown } | 'no-content';

type Handler = (call: Call) => Reply | Promise<Reply>;

const TURN_ON =
  'the admin API is off: set admin.token (env BRIDGE_ADMIN_TOKEN) or admin.tokenFile (env BRIDGE_ADMIN_TOKEN_FILE) to turn it on';

const REALM = 'Bearer realm="mqtt-kafka-bridge"';

/**
 * The admin HTTP API under /api/ (docs/admin-api.md): clients and their sessions, subscriptions,
 * rules and their counters, mapping reload and dry run, the configuration (secrets redacted)
 * and publishing. Every route but the OpenAPI document needs `Authorization: Bearer <token>`.
 * It answers for this bridge's own sessions: in a fleet, ask each bridge.
 */
export class AdminApi {
  readonly #options: AdminApiOptions;
  readonly #token: BearerToken | undefined;
  /** One per route of the table (a Record: a route without a handler does not compile). */
  readonly #handlers: Record<OperationId, Handler>;

  constructor(options: AdminApiOptions) {
    this.#options = options;
    this.#token = options.token === undefined ? undefined : new BearerToken(options.token);
    this.#handlers = {
      listClients: (call) => this.#listClients(call),
      getClient: (call) => this.#getClient(call),
      disconnectClient: (call) => this.#disconnectClient(call),
      listSubscriptions: (call) => this.#listSubscriptions(call),
      listRules: () => ({ status: 200, body: rulesView(options.mappings(), options.metrics) }),
      listDeadLetters: () => ({ status: 200, body: { items: options.metrics.deadLetters.list() } }),
      reloadMappings: (call) => this.#reloadMappings(call),
      testMappings: (call) => this.#testMappings(call),
      getConfig: () => ({ status: 200, body: redactConfig(options.config) }),
      publish: (call) => this.#publish(call),
      getOpenApi: () => ({ status: 200, body: OPENAPI_DOCUMENT }),
    };
  }

  /** Serves one request under /api (HttpServer.serveApi). */
  readonly handle = (request: IncomingMessage, response: ServerResponse): void => {
    this.#serve(request).then(
      (reply) => {
        if (reply === 'no-content') sendNoContent(response);
        else sendJson(response, reply.status, reply.body);
      },
      (error: unknown) => {
        if (response.headersSent) return;
        if (error instanceof ApiError) {
          sendError(response, error);
          return;
        }
        this.#options.log.error({ err: error, url: request.url }, 'admin API request failed');
        sendError(response, new ApiError('INTERNAL', 'internal error (see the bridge log)'));
      },
    );
  };

  async #serve(request: IncomingMessage): Promise<Reply> {
    if (this.#token === undefined) throw new ApiError('NOT_FOUND', TURN_ON);
    const url = new URL(request.url ?? '/', 'http://admin.invalid');
    const match = matchRoute(request.method ?? 'GET', url.pathname);
    const open = match.kind === 'found' && match.route.public === true;
    // before routing: without the token, every path answers alike
    if (!open) this.#authenticate(request);
    if (match.kind === 'not-found') {
      throw new ApiError('NOT_FOUND', `no route ${url.pathname}: see /api/openapi.json`);
    }
    if (match.kind === 'bad-path') throw new ApiError('BAD_REQUEST', match.problem);
    if (match.kind === 'method-not-allowed') {
      throw new ApiError('METHOD_NOT_ALLOWED', `${request.method ?? ''} is not served here`, {
        headers: { allow: match.allow.join(', ') },
      });
    }
    checkQuery(match.route, url.searchParams);
    return this.#handlers[match.route.operationId]({
      request,
      params: match.params,
      query: url.searchParams,
    });
  }

  #authenticate(request: IncomingMessage): void {
    const header = request.headers.authorization;
    if (this.#token?.accepts(header) === true) return;
    const given = header !== undefined;
    throw new ApiError(
      'UNAUTHORIZED',
      given
        ? 'the bearer token is not the admin token'
        : 'send Authorization: Bearer <admin.token>',
      { headers: { 'www-authenticate': given ? `${REALM}, error="invalid_token"` : REALM } },
    );
  }

  #listClients({ query }: Call): Reply {
    const filters = parseClientFilters(query);
    const paging = parsePaging(query);
    const snapshots = this.#options.broker
      .clientsSnapshot()
      .filter((snapshot) => clientMatches(snapshot, filters));
    const page = pageOf(snapshots, (snapshot) => snapshot.clientId, paging);
    return { status: 200, body: { ...page, items: page.items.map(clientView) } };
  }

  #getClient({ params }: Call): Reply {
    const clientId = params.clientId ?? '';
    const snapshot = this.#options.broker.clientSnapshot(clientId);
    if (snapshot === undefined) throw unknownClient(clientId);
    return { status: 200, body: clientDetail(snapshot) };
  }

  #disconnectClient({ params, query, request }: Call): Reply {
    const clientId = params.clientId ?? '';
    const session = query.get('session');
    if (session !== null && session !== 'discard') {
      throw new ApiError('BAD_REQUEST', 'session must be discard (or absent: the session is kept)');
    }
    const discard = session === 'discard';
    if (!this.#options.broker.disconnectClient(clientId, discard)) throw unknownClient(clientId);
    this.#options.log.info(
      { clientId, discardSession: discard, by: request.socket.remoteAddress },
      'client disconnected through the admin API',
    );
    return 'no-content';
  }

  #listSubscriptions({ query }: Call): Reply {
    const paging = parsePaging(query);
    const clientId = query.get('clientId') ?? undefined;
    const topic = query.get('topic') ?? undefined;
    const problem = topic === undefined ? undefined : topicNameProblem(topic);
    if (problem !== undefined) {
      throw new ApiError(
        'BAD_REQUEST',
        `topic is a topic name a message is published to: ${problem}`,
      );
    }
    const rows = subscriptionRows(this.#options.broker.clientsSnapshot(), { clientId, topic });
    return { status: 200, body: pageOf(rows, subscriptionKey, paging) };
  }

  async #reloadMappings({ request }: Call): Promise<Reply> {
    const result = await this.#options.reloader.reload();
    this.#options.log.info(
      { ok: result.ok, by: request.socket.remoteAddress },
      'mappings reload requested through the admin API',
    );
    if (!result.ok) {
      const issues = result.issues.map((issue) => ({ ...issue, at: formatPosition(issue) }));
      throw new ApiError(
        'MAPPINGS_INVALID',
        `mappings not reloaded (${issues.length} problem${issues.length === 1 ? '' : 's'}): the previous rules keep running`,
        { details: { issues } },
      );
    }
    const { uplink, downlink } = this.#options.mappings();
    return {
      status: 200,
      body: {
        ok: true,
        ruleCount: result.ruleCount,
        uplinkRules: uplink.ruleCount,
        downlinkRules: downlink.ruleCount,
      },
    };
  }

  async #testMappings({ request }: Call): Promise<Reply> {
    const publish = testRequest(await readJsonBody(request), this.#options.config.mqtt);
    const { uplink } = this.#options.mappings();
    const result = dryRunUplink(uplink, publish);
    const reason = result.records.length > 0 ? undefined : whyNoRecord(result, publish.topic);
    return { status: 200, body: { ...result, ...(reason !== undefined && { reason }) } };
  }

  async #publish({ request }: Call): Promise<Reply> {
    const { broker, log } = this.#options;
    const message = publishRequest(await readJsonBody(request), this.#options.config.mqtt);
    if (broker.uplinkCongested) {
      // as connections hold their publishes meanwhile: take nothing more while Kafka is behind
      throw new ApiError('UNAVAILABLE', 'Kafka is behind: try again shortly', {
        headers: { 'retry-after': '1' },
      });
    }
    log.info(
      { topic: message.topic, qos: message.qos, by: request.socket.remoteAddress },
      'publish through the admin API',
    );
    if (message.qos === 0) {
      const delivered = broker.publish(message, undefined);
      return { status: 200, body: { outcome: 'sent', delivered } };
    }
    const { outcome, delivered } = await new Promise<{
      outcome: UplinkOutcome;
      delivered: number;
    }>((resolve) => {
      broker.publish(message, (settled, sessions) => {
        resolve({ outcome: settled, delivered: sessions });
      });
    });
    const body =
      outcome.kind === 'failed'
        ? { outcome: 'failed', delivered, reasonCode: outcome.reasonCode, reason: outcome.reason }
        : { outcome: outcome.kind, delivered };
    return { status: 200, body };
  }
}

function unknownClient(clientId: string): ApiError {
  return new ApiError(
    'NOT_FOUND',
    `no session of client "${clientId}" on this bridge (in a fleet, each bridge answers for its own)`,
  );
}

/** Refuses query parameters the route does not take: a misspelt filter would list everything. */
function checkQuery(route: RouteSpec, query: URLSearchParams): void {
  for (const name of new Set(query.keys())) {
    if (route.query.includes(name)) continue;
    const known = route.query.length > 0 ? `; known: ${route.query.join(', ')}` : '';
    throw new ApiError('BAD_REQUEST', `unknown query parameter ${name}${known}`);
  }
}

/** Why a dry run made no record, in words. */
function whyNoRecord(result: UplinkDryRun, topic: string): string {
  switch (result.outcome) {
    case 'unmatched':
      return `no rule matches topic "${topic}" and unmatched is drop: the publish is not sent to Kafka`;
    case 'rejected':
      return `no rule matches topic "${topic}" and unmatched is reject: the publish is refused`;
    case 'invalid':
      return `a matching rule cannot map the publish (see errors), and there is no dead-letter topic`;
    case 'mapped':
      return 'every matching rule made no record';
  }
}

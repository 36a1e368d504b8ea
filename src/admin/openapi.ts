/**
 * The OpenAPI 3.1 description of the admin API, served at GET /api/openapi.json. Written by
 * hand; a test holds its paths and operations to the router's table (routes.ts).
 */

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });

const json = (schema: object, example?: unknown): object => ({
  content: { 'application/json': { schema, ...(example !== undefined && { example }) } },
});

const error = (description: string): object => ({ description, ...json(ref('Error')) });

/** Answers every authenticated route may give. */
const COMMON_ERRORS = {
  '400': error('A parameter or the body is not valid (BAD_REQUEST).'),
  '401': {
    description:
      'No token, or not the admin token (UNAUTHORIZED). The answer carries `WWW-Authenticate: Bearer`.',
    headers: { 'WWW-Authenticate': { schema: { type: 'string' } } },
    ...json(ref('Error')),
  },
  '404': error(
    'Unknown route, unknown client, or the API is off: no admin token configured (NOT_FOUND).',
  ),
  '405': {
    description: 'The path is served with other methods, listed in `Allow` (METHOD_NOT_ALLOWED).',
    headers: { Allow: { schema: { type: 'string' } } },
    ...json(ref('Error')),
  },
};

const BODY_ERRORS = {
  '413': error('The body is larger than 1 MiB (PAYLOAD_TOO_LARGE).'),
  '415': error('The body is declared as something else than JSON (UNSUPPORTED_MEDIA_TYPE).'),
};

const PAGING_PARAMETERS = [
  { $ref: '#/components/parameters/limit' },
  { $ref: '#/components/parameters/cursor' },
  { $ref: '#/components/parameters/offset' },
];

const queryString = (name: string, description: string): object => ({
  name,
  in: 'query',
  required: false,
  description,
  schema: { type: 'string' },
});

const USER_PROPERTIES = {
  type: 'object',
  description: 'MQTT 5 user properties; a list of values repeats the property.',
  additionalProperties: {
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
  },
};

const nullable = (type: string, description?: string): object => ({
  type: [type, 'null'],
  ...(description !== undefined && { description }),
});

const COUNTS_UPLINK = {
  type: 'object',
  properties: {
    produced: { type: 'integer' },
    dead_lettered: { type: 'integer' },
    refused: { type: 'integer' },
  },
};

const CLIENT_PROPERTIES = {
  clientId: { type: 'string' },
  username: nullable('string'),
  connected: { type: 'boolean' },
  address: nullable('string', '`host:port` of the connection; null while not connected.'),
  protocolVersion: { type: ['integer', 'null'], enum: [3, 4, 5, null] },
  keepAlive: nullable('integer', 'Seconds; 0: none.'),
  cleanStart: nullable('boolean'),
  sessionExpiryInterval: {
    type: 'integer',
    description: 'Seconds the session outlives its connection; 4294967295: for ever.',
  },
  sessionExpiresAt: nullable('string', 'When a kept session ends unless its client is back.'),
  connectedAt: nullable('string'),
  disconnectedAt: nullable('string'),
  subscriptionCount: { type: 'integer' },
  inflight: { type: 'integer', description: 'QoS 1/2 messages sent, not acknowledged yet.' },
  queued: { type: 'integer', description: 'Messages waiting to be sent.' },
};

const page = (item: string): object => ({
  type: 'object',
  required: ['items', 'total', 'limit', 'nextCursor'],
  properties: {
    items: { type: 'array', items: ref(item) },
    total: { type: 'integer', description: 'Items matching the filters, on all pages.' },
    limit: { type: 'integer' },
    nextCursor: nullable('string', 'Pass as `cursor` for the next page; null on the last.'),
  },
});

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'mqtt-kafka-bridge admin API',
    version: '1',
    description:
      'Clients, sessions, subscriptions, mapping rules, configuration and publishing of one bridge. Every route but this document needs `Authorization: Bearer <admin.token>`. In a fleet each bridge answers for its own sessions. See docs/admin-api.md.',
  },
  security: [{ bearer: [] }],
  paths: {
    '/api/clients': {
      get: {
        operationId: 'listClients',
        summary: 'Sessions of this bridge: connected clients and kept persistent sessions.',
        parameters: [
          ...PAGING_PARAMETERS,
          queryString('clientId', 'Client ids starting with this.'),
          queryString('username', 'This user name exactly.'),
          queryString('address', 'Addresses (`host:port`) starting with this.'),
          {
            name: 'connected',
            in: 'query',
            required: false,
            schema: { type: 'string', enum: ['true', 'false'] },
          },
        ],
        responses: { '200': { description: 'A page of clients.', ...json(page('Client')) } },
      },
    },
    '/api/clients/{clientId}': {
      parameters: [
        {
          name: 'clientId',
          in: 'path',
          required: true,
          description: 'URL-encoded (a "/" as %2F).',
          schema: { type: 'string' },
        },
      ],
      get: {
        operationId: 'getClient',
        summary: 'One client, with its subscriptions.',
        responses: { '200': { description: 'The client.', ...json(ref('ClientDetail')) } },
      },
      delete: {
        operationId: 'disconnectClient',
        summary:
          'Disconnect the client (MQTT 5: DISCONNECT 0x98 Administrative action); with session=discard its session ends too.',
        parameters: [
          {
            name: 'session',
            in: 'query',
            required: false,
            description: 'discard: end the session as a clean-start connection would.',
            schema: { type: 'string', enum: ['discard'] },
          },
        ],
        responses: { '204': { description: 'Disconnected (or, not connected, nothing to do).' } },
      },
    },
    '/api/subscriptions': {
      get: {
        operationId: 'listSubscriptions',
        summary: 'Subscriptions of the sessions of this bridge.',
        parameters: [
          ...PAGING_PARAMETERS,
          queryString('clientId', 'Of clients whose id starts with this.'),
          queryString('topic', 'A topic name: the subscriptions a message to it would match.'),
        ],
        responses: {
          '200': { description: 'A page of subscriptions.', ...json(page('SubscriptionRow')) },
        },
      },
    },
    '/api/rules': {
      get: {
        operationId: 'listRules',
        summary: 'The uplink and downlink rules in use, with their counters.',
        responses: { '200': { description: 'The rules.', ...json(ref('Rules')) } },
      },
    },
    '/api/dead-letters': {
      get: {
        operationId: 'listDeadLetters',
        summary:
          'The last 100 messages dead-lettered (or refused for the same reasons), newest first: which rule failed and why.',
        responses: {
          '200': {
            description: 'The dead letters.',
            ...json({
              type: 'object',
              properties: { items: { type: 'array', items: ref('DeadLetter') } },
            }),
          },
        },
      },
    },
    '/api/mappings/reload': {
      post: {
        operationId: 'reloadMappings',
        summary: 'Reload the mapping files, as SIGHUP does: all or nothing.',
        responses: {
          '200': { description: 'The new rules are in use.', ...json(ref('ReloadResult')) },
          '422': {
            description:
              'The files have problems (MAPPINGS_INVALID); the previous rules keep running.',
            ...json(ref('MappingsInvalid')),
          },
        },
      },
    },
    '/api/mappings/test': {
      post: {
        operationId: 'testMappings',
        summary: 'Dry run of a publish through the uplink rules in use (as `mappings test`).',
        requestBody: { required: true, ...json(ref('TestRequest')) },
        responses: {
          '200': { description: 'What the rules make of it.', ...json(ref('TestResult')) },
          ...BODY_ERRORS,
        },
      },
    },
    '/api/config': {
      get: {
        operationId: 'getConfig',
        summary: 'The effective configuration, secrets replaced by "[redacted]".',
        responses: { '200': { description: 'The configuration.', ...json({ type: 'object' }) } },
      },
    },
    '/api/publish': {
      post: {
        operationId: 'publish',
        summary:
          'Publish a message as a client would (client id $admin): to subscribers and through the uplink rules to Kafka.',
        requestBody: { required: true, ...json(ref('PublishRequest')) },
        responses: {
          '200': {
            description: 'What happened; QoS 1/2 answer once Kafka stored it (or failed).',
            ...json(ref('PublishResult')),
          },
          '503': error('Kafka is behind; try again (UNAVAILABLE).'),
          ...BODY_ERRORS,
        },
      },
    },
    '/api/openapi.json': {
      get: {
        operationId: 'getOpenApi',
        summary: 'This document; served without the token.',
        security: [],
        responses: { '200': { description: 'OpenAPI 3.1.', ...json({ type: 'object' }) } },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    parameters: {
      limit: {
        name: 'limit',
        in: 'query',
        required: false,
        schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
      },
      cursor: {
        name: 'cursor',
        in: 'query',
        required: false,
        description: '`nextCursor` of the page before (not with offset).',
        schema: { type: 'string' },
      },
      offset: {
        name: 'offset',
        in: 'query',
        required: false,
        description: 'Items to skip (not with cursor).',
        schema: { type: 'integer', minimum: 0, default: 0 },
      },
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: {
                type: 'string',
                enum: [
                  'BAD_REQUEST',
                  'UNAUTHORIZED',
                  'NOT_FOUND',
                  'METHOD_NOT_ALLOWED',
                  'PAYLOAD_TOO_LARGE',
                  'UNSUPPORTED_MEDIA_TYPE',
                  'MAPPINGS_INVALID',
                  'INTERNAL',
                  'UNAVAILABLE',
                ],
              },
              message: { type: 'string' },
            },
          },
        },
      },
      Client: { type: 'object', properties: CLIENT_PROPERTIES },
      ClientDetail: {
        type: 'object',
        properties: {
          ...CLIENT_PROPERTIES,
          subscriptions: { type: 'array', items: ref('Subscription') },
        },
      },
      Subscription: {
        type: 'object',
        properties: {
          filter: { type: 'string' },
          qos: { type: 'integer', enum: [0, 1, 2] },
          shareGroup: nullable('string'),
          options: {
            type: 'object',
            properties: {
              noLocal: { type: 'boolean' },
              retainAsPublished: { type: 'boolean' },
              retainHandling: { type: 'integer', enum: [0, 1, 2] },
              subscriptionIdentifier: nullable('integer'),
            },
          },
        },
      },
      SubscriptionRow: {
        type: 'object',
        properties: {
          clientId: { type: 'string' },
          filter: { type: 'string' },
          qos: { type: 'integer', enum: [0, 1, 2] },
          shareGroup: nullable('string'),
        },
      },
      DeadLetter: {
        type: 'object',
        properties: {
          at: { type: 'string', format: 'date-time' },
          direction: { type: 'string', enum: ['uplink', 'downlink'] },
          failures: {
            type: 'array',
            items: {
              type: 'object',
              properties: { rule: { type: 'string' }, error: { type: 'string' } },
            },
          },
          mqttTopic: { type: 'string', description: 'Uplink: the topic of the publish.' },
          clientId: { type: 'string', description: 'Uplink: the publishing client.' },
          source: { type: 'string', description: 'Downlink: the record, topic/partition/offset.' },
          deadLetterTopic: {
            type: 'string',
            description: 'Where it went; absent when no dead-letter topic is configured.',
          },
        },
      },
      Rules: {
        type: 'object',
        properties: {
          uplink: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                at: { type: 'string', description: 'file:line' },
                file: { type: 'string' },
                line: { type: 'integer' },
                from: { type: 'array', items: { type: 'string' } },
                to: { type: 'string', description: 'Kafka topic (template)' },
                counts: COUNTS_UPLINK,
              },
            },
          },
          downlink: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                at: { type: 'string', description: 'file:line' },
                file: { type: 'string' },
                line: { type: 'integer' },
                from: {
                  type: 'object',
                  properties: {
                    topics: { type: ['array', 'null'], items: { type: 'string' } },
                    pattern: nullable('string'),
                    group: nullable('string'),
                  },
                },
                to: { type: 'string', description: 'MQTT topic (template)' },
                counts: {
                  type: 'object',
                  properties: {
                    delivered: { type: 'integer' },
                    without_session: { type: 'integer' },
                    dead_lettered: { type: 'integer' },
                    refused: { type: 'integer' },
                  },
                },
              },
            },
          },
          unmatched: {
            type: 'object',
            properties: {
              action: { type: 'string', enum: ['drop', 'reject', 'forward'] },
              topic: nullable('string'),
              counts: COUNTS_UPLINK,
            },
          },
          deadLetterTopic: nullable('string'),
        },
      },
      ReloadResult: {
        type: 'object',
        properties: {
          ok: { const: true },
          ruleCount: { type: 'integer' },
          uplinkRules: { type: 'integer' },
          downlinkRules: { type: 'integer' },
        },
      },
      MappingsInvalid: {
        type: 'object',
        properties: {
          error: {
            type: 'object',
            properties: {
              code: { const: 'MAPPINGS_INVALID' },
              message: { type: 'string' },
              issues: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    at: { type: 'string', description: 'file:line:column' },
                    file: { type: 'string' },
                    line: { type: 'integer' },
                    column: { type: 'integer' },
                    message: { type: 'string' },
                  },
                },
              },
            },
          },
        },
      },
      TestRequest: {
        type: 'object',
        required: ['topic'],
        additionalProperties: false,
        properties: {
          topic: { type: 'string' },
          payload: { type: 'string', default: '' },
          payloadEncoding: { type: 'string', enum: ['utf8', 'base64'], default: 'utf8' },
          qos: { type: 'integer', enum: [0, 1, 2], default: 0 },
          retain: { type: 'boolean', default: false },
          clientId: { type: 'string', default: 'mappings-test' },
          username: { type: 'string' },
          userProperties: USER_PROPERTIES,
          contentType: { type: 'string' },
        },
      },
      TestResult: {
        type: 'object',
        properties: {
          outcome: { type: 'string', enum: ['mapped', 'unmatched', 'rejected', 'invalid'] },
          records: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                rule: { type: 'string' },
                topic: { type: 'string' },
                key: nullable('string'),
                partition: nullable('integer'),
                partitioner: { type: 'string', enum: ['hash', 'round-robin', 'explicit'] },
                timestamp: { type: 'string' },
                headers: { type: 'object' },
                value: ref('Bytes'),
              },
            },
          },
          errors: {
            type: 'array',
            items: {
              type: 'object',
              properties: { rule: { type: 'string' }, error: { type: 'string' } },
            },
          },
          reason: { type: 'string', description: 'Why no record, when none.' },
        },
      },
      Bytes: {
        description: 'Printable UTF-8 as text; anything else as { base64 }.',
        oneOf: [{ type: 'string' }, { type: 'object', properties: { base64: { type: 'string' } } }],
      },
      PublishRequest: {
        type: 'object',
        required: ['topic'],
        additionalProperties: false,
        properties: {
          topic: { type: 'string' },
          payload: { type: 'string', default: '' },
          payloadEncoding: { type: 'string', enum: ['utf8', 'base64'], default: 'utf8' },
          qos: { type: 'integer', enum: [0, 1, 2], default: 0 },
          retain: { type: 'boolean', default: false },
          userProperties: USER_PROPERTIES,
          contentType: { type: 'string' },
          responseTopic: { type: 'string' },
          correlationData: { type: 'string', description: 'As UTF-8 text.' },
          payloadFormatIndicator: { type: 'boolean' },
          messageExpiryInterval: { type: 'integer', minimum: 0, maximum: 4294967295 },
        },
      },
      PublishResult: {
        type: 'object',
        properties: {
          outcome: {
            type: 'string',
            enum: ['sent', 'stored', 'unmatched', 'failed'],
            description:
              'sent: QoS 0, handed on without waiting; stored: Kafka holds every record (or no rule matched and a subscriber took it); unmatched: no rule and no subscriber; failed: see reason.',
          },
          delivered: { type: 'integer', description: 'Sessions the message went to.' },
          reasonCode: { type: 'integer', description: 'MQTT 5 reason code of a failure.' },
          reason: { type: 'string' },
        },
      },
    },
  },
};

// every authenticated operation may also give the common errors: added here once, not in each
const operations = Object.entries(
  OPENAPI_DOCUMENT.paths as Record<string, Record<string, unknown>>,
).flatMap(([path, item]) => (path === '/api/openapi.json' ? [] : Object.values(item)));
for (const operation of operations) {
  if (typeof operation === 'object' && operation !== null && 'responses' in operation) {
    const withResponses = operation as { responses: object };
    withResponses.responses = { ...COMMON_ERRORS, ...withResponses.responses };
  }
}

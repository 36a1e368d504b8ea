/**
 * Every route of the admin API: the router serves exactly these, and a test holds the OpenAPI
 * document (openapi.ts) to them, so the two cannot drift apart.
 */

export type HttpMethod = 'GET' | 'POST' | 'DELETE';

export interface RouteSpec {
  method: HttpMethod;
  /** `/api/...`; a `{name}` segment is a path parameter (URL-decoded). */
  path: string;
  /** Names the handler (admin-api.ts) and the OpenAPI operation. */
  operationId: OperationId;
  /** The query parameters it takes; any other is a 400 (a misspelt filter would list everything). */
  query: readonly string[];
  /** Served without the token: documentation only. */
  public?: true;
}

export type OperationId =
  | 'listClients'
  | 'getClient'
  | 'disconnectClient'
  | 'listSubscriptions'
  | 'listRules'
  | 'listDeadLetters'
  | 'reloadMappings'
  | 'testMappings'
  | 'getConfig'
  | 'publish'
  | 'getOpenApi';

const PAGING = ['limit', 'cursor', 'offset'] as const;

export const ADMIN_ROUTES: readonly RouteSpec[] = [
  {
    method: 'GET',
    path: '/api/clients',
    operationId: 'listClients',
    query: [...PAGING, 'clientId', 'username', 'address', 'connected'],
  },
  { method: 'GET', path: '/api/clients/{clientId}', operationId: 'getClient', query: [] },
  {
    method: 'DELETE',
    path: '/api/clients/{clientId}',
    operationId: 'disconnectClient',
    query: ['session'],
  },
  {
    method: 'GET',
    path: '/api/subscriptions',
    operationId: 'listSubscriptions',
    query: [...PAGING, 'clientId', 'topic'],
  },
  { method: 'GET', path: '/api/rules', operationId: 'listRules', query: [] },
  { method: 'GET', path: '/api/dead-letters', operationId: 'listDeadLetters', query: [] },
  { method: 'POST', path: '/api/mappings/reload', operationId: 'reloadMappings', query: [] },
  { method: 'POST', path: '/api/mappings/test', operationId: 'testMappings', query: [] },
  { method: 'GET', path: '/api/config', operationId: 'getConfig', query: [] },
  { method: 'POST', path: '/api/publish', operationId: 'publish', query: [] },
  {
    method: 'GET',
    path: '/api/openapi.json',
    operationId: 'getOpenApi',
    query: [],
    public: true,
  },
];

export type RouteMatch =
  | { kind: 'found'; route: RouteSpec; params: Record<string, string> }
  /** The path exists, not with this method: 405 with `Allow`. */
  | { kind: 'method-not-allowed'; allow: HttpMethod[] }
  | { kind: 'not-found' }
  /** A path parameter is not valid percent-encoding. */
  | { kind: 'bad-path'; problem: string };

/** The route serving `method` on `pathname` (as in the URL, still percent-encoded). */
export function matchRoute(
  method: string,
  pathname: string,
  routes: readonly RouteSpec[] = ADMIN_ROUTES,
): RouteMatch {
  const segments = pathname.split('/');
  const allow: HttpMethod[] = [];
  let found: { route: RouteSpec; params: Record<string, string> } | undefined;
  for (const route of routes) {
    const params = matchPath(route.path.split('/'), segments);
    if (params === undefined) continue;
    if (typeof params === 'string') return { kind: 'bad-path', problem: params };
    allow.push(route.method);
    if (route.method === method) found ??= { route, params };
  }
  if (found) return { kind: 'found', ...found };
  return allow.length > 0 ? { kind: 'method-not-allowed', allow } : { kind: 'not-found' };
}

/** The parameters when `segments` fit `template`; undefined: no fit; a string: bad encoding. */
function matchPath(
  template: string[],
  segments: string[],
): Record<string, string> | string | undefined {
  if (template.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [index, part] of template.entries()) {
    const segment = segments[index] ?? '';
    if (part.startsWith('{') && part.endsWith('}')) {
      if (segment === '') return undefined;
      try {
        // a client id may hold "/" (sent as %2F), so segments are decoded only once split
        params[part.slice(1, -1)] = decodeURIComponent(segment);
      } catch {
        return `"${segment}" is not valid percent-encoding`;
      }
    } else if (part !== segment) {
      return undefined;
    }
  }
  return params;
}

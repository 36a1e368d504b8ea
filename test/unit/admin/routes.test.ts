import { describe, expect, it } from 'vitest';
import { OPENAPI_DOCUMENT } from '../../../src/admin/openapi.js';
import { ADMIN_ROUTES, matchRoute } from '../../../src/admin/routes.js';

describe('matchRoute', () => {
  it('finds a route and decodes its path parameters once split', () => {
    expect(matchRoute('GET', '/api/clients/dev%2F1%20a')).toMatchObject({
      kind: 'found',
      route: { operationId: 'getClient' },
      params: { clientId: 'dev/1 a' },
    });
    expect(matchRoute('DELETE', '/api/clients/x')).toMatchObject({
      route: { operationId: 'disconnectClient' },
    });
  });

  it('tells a wrong method (with the methods served) from an unknown path', () => {
    expect(matchRoute('PUT', '/api/clients/x')).toEqual({
      kind: 'method-not-allowed',
      allow: ['GET', 'DELETE'],
    });
    expect(matchRoute('GET', '/api/mappings/reload')).toEqual({
      kind: 'method-not-allowed',
      allow: ['POST'],
    });
    expect(matchRoute('GET', '/api/nothing')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/api/clients/')).toEqual({ kind: 'not-found' });
    expect(matchRoute('GET', '/api/clients/a/b')).toEqual({ kind: 'not-found' });
  });

  it('refuses bad percent-encoding', () => {
    expect(matchRoute('GET', '/api/clients/%E0%A4%A')).toMatchObject({ kind: 'bad-path' });
  });
});

describe('the OpenAPI document', () => {
  it('describes exactly the routes of the table, with their operation ids', () => {
    const documented = Object.entries(OPENAPI_DOCUMENT.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => ['get', 'post', 'delete', 'put', 'patch'].includes(method))
        .map(([method, operation]) => ({
          method: method.toUpperCase(),
          path,
          operationId: (operation as { operationId: string }).operationId,
        })),
    );
    const served = ADMIN_ROUTES.map(({ method, path, operationId }) => ({
      method,
      path,
      operationId,
    }));
    const order = (a: { path: string; method: string }, b: { path: string; method: string }) =>
      `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`);
    expect(documented.sort(order)).toEqual(served.sort(order));
  });
});

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';

/** A request the stub received. */
export interface StubRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type StubAnswer = { status: number; body?: unknown } | 'hang';

/**
 * A tiny local HTTP server standing in for a registry in unit tests: `answer` decides each
 * response (JSON), every request is recorded. Closed when the test finishes.
 */
export async function httpStub(
  answer: (request: StubRequest) => StubAnswer,
): Promise<{ url: string; requests: StubRequest[] }> {
  const requests: StubRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(request);
      const reply = answer(request);
      if (reply === 'hang') return;
      res.writeHead(reply.status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
      res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests };
}

/** A stub that behaves like a registry: lookup/register under subjects, schemas by id. */
export async function fakeRegistry(): Promise<{
  url: string;
  requests: StubRequest[];
  schemas: string[];
}> {
  const schemas: string[] = [];
  const subjects = new Map<string, number[]>();
  const stub = await httpStub(({ method, url, body }) => {
    const byId = /^\/schemas\/ids\/(\d+)$/.exec(url);
    if (method === 'GET' && byId) {
      const schema = schemas[Number(byId[1]) - 1];
      return schema === undefined
        ? { status: 404, body: { error_code: 40403, message: 'Schema not found' } }
        : { status: 200, body: { schema } };
    }
    const subject = /^\/subjects\/([^/]+)(\/versions)?$/.exec(url);
    if (method === 'POST' && subject) {
      const name = decodeURIComponent(subject[1] ?? '');
      const { schema } = JSON.parse(body) as { schema: string };
      const id = schemas.indexOf(schema) + 1;
      const ids = subjects.get(name) ?? [];
      if (subject[2] === undefined) {
        if (id > 0 && ids.includes(id)) return { status: 200, body: { subject: name, id } };
        const code = subjects.has(name) ? 40403 : 40401;
        return { status: 404, body: { error_code: code, message: 'not found' } };
      }
      const newId = id > 0 ? id : schemas.push(schema);
      subjects.set(name, [...ids, newId]);
      return { status: 200, body: { id: newId } };
    }
    return { status: 404, body: { error_code: 404, message: 'HTTP 404 Not Found' } };
  });
  return { ...stub, schemas };
}

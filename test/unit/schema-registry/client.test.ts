import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { SchemaRegistryConfig } from '../../../src/config/load.js';
import { SchemaRegistryClient, SchemaRegistryError } from '../../../src/schema-registry/client.js';
import { createTestCertificates } from '../../support/certificates.js';
import { fakeRegistry, httpStub } from './http-stub.js';

const SCHEMA = '{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}';

function clientOf(options: ConstructorParameters<typeof SchemaRegistryClient>[0]) {
  const client = new SchemaRegistryClient(options);
  onTestFinished(() => {
    client.close();
  });
  return client;
}

async function failure(promise: Promise<unknown>): Promise<SchemaRegistryError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(SchemaRegistryError);
  return error as SchemaRegistryError;
}

describe('SchemaRegistryClient.register', () => {
  it('looks the schema up first, registers it when the subject lacks it', async () => {
    const registry = await fakeRegistry();
    const client = clientOf({ url: registry.url });
    expect(await client.register('t-value', SCHEMA)).toBe(1);
    expect(registry.requests.map(({ method, url }) => `${method} ${url}`)).toEqual([
      'POST /subjects/t-value',
      'POST /subjects/t-value/versions',
    ]);
    const [lookup] = registry.requests;
    expect(lookup?.headers['content-type']).toBe('application/vnd.schemaregistry.v1+json');
    expect(JSON.parse(lookup?.body ?? '')).toEqual({ schema: SCHEMA });

    // another process (a fresh client) finds it registered: one lookup, nothing registered
    const other = clientOf({ url: registry.url });
    expect(await other.register('t-value', SCHEMA)).toBe(1);
    expect(registry.requests).toHaveLength(3);
  });

  it('asks once per subject and schema, concurrent callers included', async () => {
    const registry = await fakeRegistry();
    const client = clientOf({ url: registry.url });
    const ids = await Promise.all([
      client.register('a', SCHEMA),
      client.register('a', SCHEMA),
      client.register('b', SCHEMA),
    ]);
    expect(ids).toEqual([1, 1, 1]);
    expect(await client.register('a', SCHEMA)).toBe(1);
    expect(registry.requests.map(({ url }) => url)).toEqual([
      '/subjects/a',
      '/subjects/b',
      '/subjects/a/versions',
      '/subjects/b/versions',
    ]);
  });

  it('does not cache a failure: the next call asks again', async () => {
    let down = true;
    const stub = await httpStub(() =>
      down ? { status: 503, body: { message: 'starting' } } : { status: 200, body: { id: 7 } },
    );
    const client = clientOf({ url: stub.url });
    const error = await failure(client.register('s', SCHEMA));
    expect(error.message).toBe(
      `schema registry ${stub.url}: POST /subjects/s: 503 Service Unavailable: starting`,
    );
    expect(error.retriable).toBe(true);
    down = false;
    expect(await client.register('s', SCHEMA)).toBe(7);
  });

  it('reports a refusal with the registry error code, not retriable', async () => {
    const stub = await httpStub(({ url }) =>
      url.endsWith('/versions')
        ? {
            status: 409,
            body: { error_code: 409, message: 'Schema being registered is incompatible' },
          }
        : { status: 404, body: { error_code: 40401, message: 'Subject not found' } },
    );
    const error = await failure(clientOf({ url: stub.url }).register('s', SCHEMA));
    expect(error.message).toBe(
      `schema registry ${stub.url}: POST /subjects/s/versions: 409 Conflict: Schema being registered is incompatible (error 409)`,
    );
    expect([error.status, error.errorCode, error.retriable]).toEqual([409, 409, false]);
  });

  it('keeps the base path of the URL and encodes the subject', async () => {
    const stub = await httpStub(() => ({ status: 200, body: { id: 3 } }));
    const client = clientOf({ url: `${stub.url}/apis/ccompat/v7/` });
    expect(client.url).toBe(`${stub.url}/apis/ccompat/v7`);
    await client.register('a/b c', SCHEMA);
    expect(stub.requests[0]?.url).toBe('/apis/ccompat/v7/subjects/a%2Fb%20c');
  });
});

describe('SchemaRegistryClient.schemaById', () => {
  it('fetches a schema once, with its type (AVRO when left out)', async () => {
    const registry = await fakeRegistry();
    const client = clientOf({ url: registry.url });
    await client.register('s', SCHEMA);
    const [first, second] = await Promise.all([client.schemaById(1), client.schemaById(1)]);
    expect(first).toEqual({ schema: SCHEMA, schemaType: 'AVRO', references: [] });
    expect(second).toBe(first);
    expect(await client.schemaById(1)).toBe(first);
    expect(registry.requests.filter(({ method }) => method === 'GET')).toHaveLength(1);
  });

  it('reports an unknown id as status 404 with the registry error code', async () => {
    const registry = await fakeRegistry();
    const error = await failure(clientOf({ url: registry.url }).schemaById(42));
    expect(error.message).toBe(
      `schema registry ${registry.url}: GET /schemas/ids/42: 404 Not Found: Schema not found (error 40403)`,
    );
    expect([error.status, error.errorCode, error.retriable]).toEqual([404, 40403, false]);
  });

  it('names the URL when the registry does not answer', async () => {
    const closed = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => {
          resolve(port);
        });
      });
    });
    const refused = await failure(clientOf({ url: `http://127.0.0.1:${closed}` }).schemaById(1));
    expect(refused.message).toMatch(
      new RegExp(
        `^schema registry http://127\\.0\\.0\\.1:${closed}: GET /schemas/ids/1: .*ECONNREFUSED`,
      ),
    );
    expect([refused.status, refused.retriable]).toEqual([undefined, true]);

    const hanging = await httpStub(() => 'hang');
    const timedOut = await failure(clientOf({ url: hanging.url, timeoutMs: 100 }).schemaById(1));
    expect(timedOut.message).toBe(
      `schema registry ${hanging.url}: GET /schemas/ids/1: no answer within 100 ms`,
    );
  });
});

describe('basic authentication', () => {
  it('sends the user and password of the options, or of the URL, and never shows them', async () => {
    const stub = await httpStub(() => ({ status: 401, body: { message: 'Unauthorized' } }));
    const basic = (user: string, password: string) =>
      `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

    const configured = clientOf({ url: stub.url, username: 'bridge', password: 'p@ss:w' });
    const error = await failure(configured.schemaById(1));
    expect(stub.requests[0]?.headers.authorization).toBe(basic('bridge', 'p@ss:w'));
    expect(error.message).toBe(
      `schema registry ${stub.url}: GET /schemas/ids/1: 401 Unauthorized: Unauthorized`,
    );

    const inUrl = clientOf({ url: stub.url.replace('http://', 'http://alice:s%3Acret@') });
    expect(inUrl.url).toBe(stub.url);
    const urlError = await failure(inUrl.schemaById(2));
    expect(stub.requests[1]?.headers.authorization).toBe(basic('alice', 's:cret'));
    expect(urlError.message).not.toContain('cret');

    await failure(clientOf({ url: stub.url }).schemaById(3));
    expect(stub.requests[2]?.headers.authorization).toBeUndefined();
  });
});

describe('SchemaRegistryClient.fromConfig', () => {
  const config = (overrides: Partial<SchemaRegistryConfig>): SchemaRegistryConfig => ({
    url: '',
    username: '',
    password: '',
    passwordFile: '',
    caFile: '',
    certFile: '',
    keyFile: '',
    rejectUnauthorized: true,
    ...overrides,
  });

  it('is undefined without a URL', () => {
    expect(SchemaRegistryClient.fromConfig(config({}))).toBeUndefined();
  });

  it('reads the password file (without its trailing newline)', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'registry-config-'));
    onTestFinished(() => rm(folder, { recursive: true, force: true }));
    await writeFile(join(folder, 'password'), 'from-file\n');
    const stub = await httpStub(() => ({ status: 200, body: { id: 1 } }));
    const client = SchemaRegistryClient.fromConfig(
      config({
        url: stub.url,
        username: 'u',
        password: 'ignored',
        passwordFile: join(folder, 'password'),
      }),
    );
    onTestFinished(() => client?.close());
    await client?.register('s', SCHEMA);
    expect(stub.requests[0]?.headers.authorization).toBe(
      `Basic ${Buffer.from('u:from-file').toString('base64')}`,
    );
  });

  it('names the option of a file it cannot read, and refuses a URL that is not http(s)', () => {
    expect(() =>
      SchemaRegistryClient.fromConfig(config({ url: 'https://r', caFile: '/no/such/ca.pem' })),
    ).toThrow(/^schemaRegistry\.caFile \/no\/such\/ca\.pem: ENOENT/);
    expect(() => SchemaRegistryClient.fromConfig(config({ url: 'ftp://r' }))).toThrow(
      'schema registry URL ftp://r must start with http:// or https://',
    );
    expect(() => SchemaRegistryClient.fromConfig(config({ url: 'not a url' }))).toThrow(
      'schema registry URL "not a url" is invalid',
    );
  });
});

describe('TLS', () => {
  it('trusts the CA given, sends a client certificate, and can be told to trust anything', async () => {
    const certificates = await createTestCertificates();
    onTestFinished(() => rm(certificates.folder, { recursive: true, force: true }));
    const server = https.createServer(
      {
        cert: await readFile(certificates.serverCertFile),
        key: await readFile(certificates.serverKeyFile),
        ca: certificates.ca,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ schema: '"string"' }));
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onTestFinished(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => {
            resolve();
          });
        }),
    );
    const url = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const tls = { cert: certificates.clientCert, key: certificates.clientKey };

    const mutual = clientOf({ url, ca: certificates.ca, ...tls });
    expect((await mutual.schemaById(1)).schema).toBe('"string"');

    const untrusted = await failure(clientOf({ url, ...tls }).schemaById(1));
    expect(untrusted.message).toMatch(
      new RegExp(`^schema registry ${url}: GET /schemas/ids/1: .*certificate`),
    );
    const insecure = clientOf({ url, ...tls, rejectUnauthorized: false });
    expect((await insecure.schemaById(1)).schemaType).toBe('AVRO');

    // without a client certificate the server hangs up during the handshake
    const anonymous = await failure(clientOf({ url, ca: certificates.ca }).schemaById(1));
    expect(anonymous.retriable).toBe(true);
  });
});

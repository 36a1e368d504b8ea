import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { SchemaRegistryConfig } from '../config/load.js';

/*
 * A small client of a Confluent-compatible schema registry (Confluent Schema Registry, Apicurio
 * Registry's /apis/ccompat/v7, Redpanda, Karapace): the two calls the bridge needs, cached.
 */

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';
const ACCEPT = `${CONTENT_TYPE}, application/vnd.schemaregistry+json, application/json`;
const DEFAULT_TIMEOUT_MS = 10_000;
/** Confluent error codes: subject not found, schema not found (under a subject). */
const NOT_REGISTERED = new Set([40401, 40403]);

/** A failed registry call; the message names the registry and the call, never a password. */
export class SchemaRegistryError extends Error {
  override readonly name = 'SchemaRegistryError';
  /** HTTP status; undefined when there was no answer (network, timeout). */
  readonly status: number | undefined;
  /** The registry's `error_code` (Confluent's: 40401 subject not found, 40403 schema not found…). */
  readonly errorCode: number | undefined;
  /** Worth trying again later: no answer, 5xx, 429. */
  readonly retriable: boolean;

  constructor(
    message: string,
    facts: { status?: number; errorCode?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: facts.cause });
    this.status = facts.status;
    this.errorCode = facts.errorCode;
    const { status } = facts;
    this.retriable = status === undefined || status >= 500 || status === 429;
  }
}

/** A schema as the registry holds it. */
export interface RegistrySchema {
  /** The schema text (Avro: JSON). */
  schema: string;
  /** `AVRO` (the default when the registry leaves it out), `JSON` or `PROTOBUF`. */
  schemaType: string;
  /** Schemas this one refers to (by subject and version); the bridge does not follow them. */
  references: unknown[];
}

export interface SchemaRegistryClientOptions {
  /** The registry's base URL; user:password in it are used for basic authentication. */
  url: string;
  username?: string;
  password?: string;
  /** PEM: authorities that sign the registry's certificate (default: the system's). */
  ca?: string | Buffer;
  /** PEM client certificate and key, for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Refuse a registry whose certificate is not trusted (default true). */
  rejectUnauthorized?: boolean;
  /** Per request; default 10 s. */
  timeoutMs?: number;
}

interface Answer {
  status: number;
  body: unknown;
}

/**
 * Registers and reads schemas. `register` and `schemaById` are cached: a subject/schema pair is
 * sent once, an id fetched once (concurrent callers share the request); failures are not cached.
 */
export class SchemaRegistryClient {
  /** The base URL without credentials, as messages show it. */
  readonly url: string;
  readonly #base: URL;
  /** The base URL's path without a trailing slash ('' for none). */
  readonly #prefix: string;
  readonly #authorization: string | undefined;
  readonly #agent: http.Agent;
  readonly #timeoutMs: number;
  readonly #ids = new Map<string, Promise<number>>();
  readonly #schemas = new Map<number, Promise<RegistrySchema>>();

  constructor(options: SchemaRegistryClientOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new SchemaRegistryError(
        `schema registry URL ${JSON.stringify(options.url)} is invalid`,
      );
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new SchemaRegistryError(
        `schema registry URL ${displayUrl(base)} must start with http:// or https://`,
      );
    }
    const username = options.username || decodeURIComponent(base.username);
    const password = options.password || decodeURIComponent(base.password);
    base.username = '';
    base.password = '';
    base.search = '';
    base.hash = '';
    this.#base = base;
    this.#prefix = base.pathname.replace(/\/+$/, '');
    this.url = displayUrl(base);
    this.#authorization =
      username !== '' || password !== ''
        ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
        : undefined;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#agent =
      base.protocol === 'https:'
        ? new https.Agent({
            keepAlive: true,
            ca: options.ca,
            cert: options.cert,
            key: options.key,
            rejectUnauthorized: options.rejectUnauthorized ?? true,
          })
        : new http.Agent({ keepAlive: true });
  }

  /**
   * The client of the `schemaRegistry.*` options, undefined when `url` is empty. Reads the
   * password, CA, certificate and key files now; throws naming the option of a file it cannot read.
   */
  static fromConfig(config: SchemaRegistryConfig): SchemaRegistryClient | undefined {
    if (config.url.trim() === '') return undefined;
    const file = (option: string, path: string): string | undefined => {
      if (path === '') return undefined;
      try {
        return readFileSync(path, 'utf8');
      } catch (error) {
        throw new SchemaRegistryError(
          `schemaRegistry.${option} ${path}: ${(error as Error).message}`,
        );
      }
    };
    const passwordFile = file('passwordFile', config.passwordFile);
    return new SchemaRegistryClient({
      url: config.url.trim(),
      username: config.username,
      password: passwordFile?.replace(/\r?\n$/, '') ?? config.password,
      ca: file('caFile', config.caFile),
      cert: file('certFile', config.certFile),
      key: file('keyFile', config.keyFile),
      rejectUnauthorized: config.rejectUnauthorized,
    });
  }

  /**
   * The id of `schema` (Avro JSON text) under `subject`: looked up first (which read-only
   * credentials allow), registered as a new version if the subject does not have it yet.
   */
  register(subject: string, schema: string): Promise<number> {
    const key = JSON.stringify([subject, schema]);
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.#registerOnce(subject, schema);
      this.#ids.set(key, id);
      id.catch(() => this.#ids.delete(key));
    }
    return id;
  }

  /** The schema with this id (GET /schemas/ids/{id}). A 404 is a SchemaRegistryError, status 404. */
  schemaById(id: number): Promise<RegistrySchema> {
    let schema = this.#schemas.get(id);
    if (schema === undefined) {
      schema = this.#fetchSchema(id);
      this.#schemas.set(id, schema);
      schema.catch(() => this.#schemas.delete(id));
    }
    return schema;
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.#agent.destroy();
  }

  async #registerOnce(subject: string, schema: string): Promise<number> {
    const path = `/subjects/${encodeURIComponent(subject)}`;
    const body = { schema };
    try {
      const found = await this.#call('POST', path, body);
      return idOf(found.body, () => this.#failure('POST', path, found, 'an answer without an id'));
    } catch (error) {
      const notRegistered =
        error instanceof SchemaRegistryError &&
        error.status === 404 &&
        (error.errorCode === undefined || NOT_REGISTERED.has(error.errorCode));
      if (!notRegistered) throw error;
    }
    const versions = `${path}/versions`;
    const registered = await this.#call('POST', versions, body);
    return idOf(registered.body, () =>
      this.#failure('POST', versions, registered, 'an answer without an id'),
    );
  }

  async #fetchSchema(id: number): Promise<RegistrySchema> {
    const path = `/schemas/ids/${id}`;
    const answer = await this.#call('GET', path);
    const body = answer.body as Partial<Record<string, unknown>> | null;
    if (typeof body !== 'object' || body === null || typeof body.schema !== 'string') {
      throw this.#failure('GET', path, answer, 'an answer without a schema');
    }
    return {
      schema: body.schema,
      schemaType: typeof body.schemaType === 'string' ? body.schemaType : 'AVRO',
      references: Array.isArray(body.references) ? (body.references as unknown[]) : [],
    };
  }

  /** One request; resolves with a 2xx answer, rejects with a SchemaRegistryError otherwise. */
  #call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> {
    const url = new URL(this.#base.href);
    url.pathname = `${this.#prefix}${path}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { accept: ACCEPT };
    if (payload !== undefined) {
      headers['content-type'] = CONTENT_TYPE;
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    if (this.#authorization !== undefined) headers.authorization = this.#authorization;
    const request = url.protocol === 'https:' ? https.request : http.request;
    return new Promise<Answer>((resolve, reject) => {
      const req = request(
        url,
        { method, headers, agent: this.#agent, timeout: this.#timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error) => {
            reject(this.#unreachable(method, path, error));
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text === '' ? null : JSON.parse(text);
            } catch {
              // not JSON: kept as text for the message
            }
            const answer = { status: res.statusCode ?? 0, body: parsed };
            if (answer.status >= 200 && answer.status < 300) resolve(answer);
            else reject(this.#failure(method, path, answer));
          });
        },
      );
      req.on('timeout', () => {
        req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`));
      });
      req.on('error', (error) => {
        reject(this.#unreachable(method, path, error));
      });
      req.end(payload);
    });
  }

  #unreachable(method: string, path: string, error: Error): SchemaRegistryError {
    return new SchemaRegistryError(
      `schema registry ${this.url}: ${method} ${path}: ${error.message}`,
      {
        cause: error,
      },
    );
  }

  #failure(method: string, path: string, answer: Answer, problem?: string): SchemaRegistryError {
    const body = answer.body as Partial<Record<string, unknown>> | string | null;
    const errorCode =
      typeof body === 'object' && body !== null && typeof body.error_code === 'number'
        ? body.error_code
        : undefined;
    const said =
      typeof body === 'object' && body !== null && typeof body.message === 'string'
        ? body.message
        : typeof body === 'string'
          ? body.slice(0, 200)
          : '';
    const status = `${answer.status} ${http.STATUS_CODES[answer.status] ?? ''}`.trim();
    const detail = problem ?? [status, said].filter((part) => part !== '').join(': ');
    const code = errorCode === undefined ? '' : ` (error ${errorCode})`;
    return new SchemaRegistryError(
      `schema registry ${this.url}: ${method} ${path}: ${detail}${code}`,
      { status: answer.status, ...(errorCode !== undefined && { errorCode }) },
    );
  }
}

/** A URL for messages: no user name, no password. */
function displayUrl(url: URL): string {
  const shown = new URL(url.href);
  shown.username = '';
  shown.password = '';
  return shown.href.replace(/\/+$/, '');
}

function idOf(body: unknown, failure: () => SchemaRegistryError): number {
  const id = (body as Partial<Record<string, unknown>> | null)?.id;
  if (typeof id === 'number' && Number.isInteger(id) && id >= 0) return id;
  throw failure();
}

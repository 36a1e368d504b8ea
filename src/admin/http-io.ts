import type { IncomingMessage, ServerResponse } from 'node:http';

/** The codes of the admin API's JSON errors. */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'MAPPINGS_INVALID'
  | 'INTERNAL'
  | 'UNAVAILABLE';

const STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  MAPPINGS_INVALID: 422,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

/** Request bodies beyond this are refused (413) without being read further. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** A refusal the API answers as `{ "error": { "code", "message", ...details } }`. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    extra: { details?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.code = code;
    this.details = extra.details ?? {};
    this.headers = extra.headers ?? {};
  }

  get status(): number {
    return STATUS[this.code];
  }
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    // answers about live state (and the configuration): never from a cache
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(text);
}

export function sendError(response: ServerResponse, error: ApiError): void {
  const body = { error: { code: error.code, message: error.message, ...error.details } };
  sendJson(response, error.status, body, error.headers);
}

export function sendNoContent(response: ServerResponse): void {
  response.writeHead(204, { 'cache-control': 'no-store' });
  response.end();
}

/**
 * The request's JSON body (an object). Refuses what is not JSON (415 for another declared
 * media type, 400 for bad JSON) and bodies over MAX_BODY_BYTES (413, checked against
 * Content-Length first, then as bytes arrive, so a large body is not buffered).
 */
export async function readJsonBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const type = request.headers['content-type'];
  if (type !== undefined && !/^application\/(.+\+)?json\s*(;|$)/i.test(type)) {
    throw new ApiError('UNSUPPORTED_MEDIA_TYPE', `expected application/json, not ${type}`);
  }
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    let size = 0;
    // events, not `for await`: leaving that loop early destroys the socket the 413 goes out on;
    // past the limit the rest is read and dropped (nothing buffered) so the client reads the answer
    request.on('data', (chunk: Buffer) => {
      const before = size;
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else if (before <= MAX_BODY_BYTES) {
        chunks.length = 0;
        reject(tooLarge());
      }
    });
    request.on('end', resolve);
    request.on('error', reject);
  });
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new ApiError('BAD_REQUEST', 'expected a JSON object as the body');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new ApiError('BAD_REQUEST', `the body is not JSON: ${(error as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('BAD_REQUEST', 'expected a JSON object as the body');
  }
  return body as Record<string, unknown>;
}

function tooLarge(): ApiError {
  // (what the client still sends is read and dropped by Node once the answer is out, within the
  // server's request timeout; closing at once would cut a client still sending off its answer)
  return new ApiError('PAYLOAD_TOO_LARGE', `the body is larger than ${MAX_BODY_BYTES} bytes`);
}

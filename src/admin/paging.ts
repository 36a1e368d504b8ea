import { ApiError } from './http-io.js';

/*
 * Paging of the admin API's lists: items sorted by a key, a page of `limit` from a cursor (the
 * key of the last item of the page before, so a list that changes between pages neither repeats
 * nor skips items still there) or from an offset.
 */

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

export interface Paging {
  limit: number;
  /** Items after this key (from `cursor`). */
  after: string | undefined;
  offset: number;
}

export interface Page<T> {
  items: T[];
  /** Items matching the filters, on every page. */
  total: number;
  limit: number;
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** `limit`, `cursor` and `offset` of a query; a bad one is a 400. */
export function parsePaging(query: URLSearchParams): Paging {
  const limit = integerParam(query, 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT);
  const offset = integerParam(query, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
  const cursor = query.get('cursor');
  if (cursor !== null && query.has('offset')) {
    throw new ApiError('BAD_REQUEST', 'give cursor or offset, not both');
  }
  return { limit, offset, after: cursor === null ? undefined : decodeCursor(cursor) };
}

function integerParam(
  query: URLSearchParams,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = query.get(name);
  if (text === null) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new ApiError('BAD_REQUEST', `${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  // base64url of a UTF-8 key: anything else was not made by this API
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (cursor === '' || encodeCursor(key) !== cursor) {
    throw new ApiError('BAD_REQUEST', 'cursor is not one this API gave (use nextCursor)');
  }
  return key;
}

/** One page of `items`, sorted by `keyOf` (keys unique); `items` itself is not changed. */
export function pageOf<T>(
  items: readonly T[],
  keyOf: (item: T) => string,
  paging: Paging,
): Page<T> {
  const keyed = items.map((item) => ({ key: keyOf(item), item }));
  // code unit order, the order `>` compares cursors in
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const { after, limit } = paging;
  let start = paging.offset;
  if (after !== undefined) {
    start = keyed.findIndex(({ key }) => key > after);
    if (start === -1) start = keyed.length;
  }
  const slice = keyed.slice(start, start + limit);
  const last = slice.at(-1);
  const more = start + limit < keyed.length;
  return {
    items: slice.map(({ item }) => item),
    total: keyed.length,
    limit,
    nextCursor: more && last !== undefined ? encodeCursor(last.key) : null,
  };
}

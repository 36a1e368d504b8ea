import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../src/admin/http-io.js';
import { encodeCursor, pageOf, parsePaging } from '../../../src/admin/paging.js';

const query = (text: string): URLSearchParams => new URLSearchParams(text);
const ids = (count: number): string[] =>
  Array.from({ length: count }, (_, index) => `c${String(index).padStart(3, '0')}`);
const key = (id: string): string => id;

describe('parsePaging', () => {
  it('defaults to 100 from the start', () => {
    expect(parsePaging(query(''))).toEqual({ limit: 100, offset: 0, after: undefined });
  });

  it('takes limit up to 1000, offset, and a cursor it made', () => {
    expect(parsePaging(query('limit=1000&offset=5'))).toMatchObject({ limit: 1000, offset: 5 });
    expect(parsePaging(query(`cursor=${encodeCursor('dev/1')}`)).after).toBe('dev/1');
  });

  it.each(['limit=0', 'limit=1001', 'limit=ten', 'limit=1.5', 'offset=-1', 'limit='])(
    'refuses %s with a 400',
    (text) => {
      expect(() => parsePaging(query(text))).toThrow(ApiError);
      try {
        parsePaging(query(text));
      } catch (error) {
        expect((error as ApiError).status).toBe(400);
      }
    },
  );

  it('refuses a cursor together with an offset, and cursors it did not make', () => {
    expect(() => parsePaging(query(`cursor=${encodeCursor('a')}&offset=1`))).toThrow(/not both/);
    expect(() => parsePaging(query('cursor=not!base64'))).toThrow(/cursor/);
    expect(() => parsePaging(query('cursor='))).toThrow(/cursor/);
  });
});

describe('pageOf', () => {
  it('sorts by key and walks every item once, page by page, with nextCursor', () => {
    const items = ids(25).reverse();
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const paging = parsePaging(query(cursor === null ? 'limit=10' : `limit=10&cursor=${cursor}`));
      const page = pageOf(items, key, paging);
      expect(page.total).toBe(25);
      seen.push(...page.items);
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids(25));
  });

  it('gives null as nextCursor on the last page, also when it is exactly full', () => {
    expect(pageOf(ids(10), key, { limit: 10, offset: 0, after: undefined }).nextCursor).toBeNull();
    expect(pageOf([], key, { limit: 10, offset: 0, after: undefined })).toEqual({
      items: [],
      total: 0,
      limit: 10,
      nextCursor: null,
    });
  });

  it('starts at an offset', () => {
    const page = pageOf(ids(5), key, { limit: 2, offset: 3, after: undefined });
    expect(page.items).toEqual(['c003', 'c004']);
    expect(page.nextCursor).toBeNull();
  });

  it('neither repeats nor skips an item still there when items come and go between pages', () => {
    const first = pageOf(ids(6), key, { limit: 3, offset: 0, after: undefined });
    expect(first.items).toEqual(['c000', 'c001', 'c002']);
    // c001 left, c0015 arrived before the cursor, c0045 after it
    const changed = ['c000', 'c0015', 'c002', 'c003', 'c004', 'c0045', 'c005'];
    const after = Buffer.from(first.nextCursor ?? '', 'base64url').toString();
    const second = pageOf(changed, key, { limit: 10, offset: 0, after });
    expect(second.items).toEqual(['c003', 'c004', 'c0045', 'c005']);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ADMIN_ROUTES } from '../../../src/admin/routes.js';

/* docs/admin-api.md has one section per route the router serves, and no other. */

describe('docs/admin-api.md', () => {
  it('documents every route of the admin API, each with its query parameters', () => {
    const text = readFileSync(new URL('../../../docs/admin-api.md', import.meta.url), 'utf8');
    const sections = [...text.matchAll(/^## (GET|POST|DELETE) (\/api\/\S+)$/gm)].map(
      (match) => `${match[1]} ${match[2]}`,
    );
    expect(sections.sort()).toEqual(
      ADMIN_ROUTES.map((route) => `${route.method} ${route.path}`).sort(),
    );
    for (const route of ADMIN_ROUTES) {
      const start = text.indexOf(`## ${route.method} ${route.path}\n`);
      const end = text.indexOf('\n## ', start + 1);
      const section = text.slice(start, end < 0 ? undefined : end);
      for (const name of route.query) {
        expect(section, `${route.method} ${route.path}: query parameter ${name}`).toContain(
          `\`${name}\``,
        );
      }
    }
  });
});

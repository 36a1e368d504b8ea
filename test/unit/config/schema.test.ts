import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';

interface Option {
  name: string;
  env: string;
  doc: string;
  default: unknown;
}

function options(node: object, prefix = ''): Option[] {
  return Object.entries(node).flatMap(([key, value]: [string, object]) =>
    'doc' in value
      ? [{ name: `${prefix}${key}`, ...(value as Omit<Option, 'name'>) }]
      : options(value, `${prefix}${key}.`),
  );
}

/** The cells of one README table row, trimmed (Prettier pads them). */
function rows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
}

describe('configuration schema', () => {
  it('gives every option a doc and a BRIDGE_ environment variable', () => {
    const all = options(configSchema);
    expect(all.length).toBeGreaterThan(10);
    for (const option of all) {
      expect(option.env, option.name).toMatch(/^BRIDGE_[A-Z_]+$/);
      expect(option.doc, option.name).not.toBe('');
    }
  });

  it('is documented in the README table: option, environment variable and default', () => {
    const table = rows(
      readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8'),
    );
    for (const option of options(configSchema)) {
      const shown = Array.isArray(option.default)
        ? option.default.join(',')
        : String(option.default);
      const row = table.find((cells) => cells[0] === `\`${option.name}\``);
      expect(row?.slice(0, 3), option.name).toEqual([
        `\`${option.name}\``,
        `\`${option.env}\``,
        `\`${shown}\``,
      ]);
    }
  });

  it('has every option the README names as a bound of memory', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(
      readme.indexOf('## Bounded memory'),
      readme.indexOf('## Operations'),
    );
    const named = [...section.matchAll(/`([a-z]+\.[A-Za-z.]+)`/g)].map((match) => match[1]);
    expect(named.length).toBeGreaterThan(20);
    const known = new Set(options(configSchema).map((option) => option.name));
    for (const name of named) expect(known, name).toContain(name);
  });
});

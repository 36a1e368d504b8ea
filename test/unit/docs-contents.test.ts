import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/*
 * Every reference page in docs/ opens with a table of contents: one link per section, in order,
 * to the anchor GitHub gives the heading. A section added, renamed or removed without its entry
 * fails here.
 */

const docs = new URL('../../docs/', import.meta.url);

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replaceAll(' ', '-');
}

interface Heading {
  level: number;
  text: string;
  /** Index of its line. */
  line: number;
}

/** Headings outside code blocks. */
function headings(lines: string[]): Heading[] {
  const found: Heading[] = [];
  let inCode = false;
  for (const [line, content] of lines.entries()) {
    if (content.startsWith('```')) inCode = !inCode;
    const match = inCode ? null : /^(#{1,3}) (.*)$/.exec(content);
    if (match) found.push({ level: match[1]?.length ?? 0, text: match[2] ?? '', line });
  }
  return found;
}

describe('docs/ tables of contents', () => {
  const pages = readdirSync(docs).filter((name) => name.endsWith('.md'));

  it.each(pages)('%s lists its sections, in order', (page) => {
    const lines = readFileSync(new URL(page, docs), 'utf8').split('\n');
    const [, ...rest] = headings(lines);
    // pages whose sections are level-1 headings (after the title) use those; others level 2
    const level = rest.some((heading) => heading.level === 1) ? 1 : 2;
    const sections = rest.filter((heading) => heading.level === level);
    if (sections.length < 2) return; // a single table or a single section needs no contents
    const contents = lines.slice(0, sections[0]?.line);
    const entries = contents.flatMap((line) => /^- \[.*\]\(#([^)]+)\)$/.exec(line)?.[1] ?? []);
    expect(entries).toEqual(sections.map((section) => anchor(section.text)));
  });
});

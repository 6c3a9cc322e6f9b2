/**
 * The README and the guides in docs/ as a reader follows them: every relative link leads to a
 * file that exists, and every `#anchor` to a heading of its file (GitHub's slugs). The README
 * stays short and opens with the two commands; the guides' index lists every guide.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/child.ts';

const FILES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const text = (file: string): string => readFileSync(join(ROOT, file), 'utf8');
/** The text outside fenced code blocks (a `# comment` in a shell block is no heading). */
const prose = (md: string): string => md.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(md).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = m[1]!.toLowerCase().replace(/[^\p{L}\p{N}\- _]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every `[text](target)` and `![alt](target)` outside code, but for other sites' addresses. */
function links(md: string): string[] {
  const body = prose(md).replace(/`[^`\n]*`/g, '');
  return [...body.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

describe('the README and docs/', () => {
  it('anchors are GitHub\'s', () => {
    const a = anchors('# Access: a shared secret or tokens\n## The session\'s command state\n## Lifecycle events (`GET /events`)\n```sh\n# not a heading\n```\n## Tests\n## Tests\n');
    expect([...a]).toEqual(['access-a-shared-secret-or-tokens', 'the-sessions-command-state', 'lifecycle-events-get-events', 'tests', 'tests-1']);
  });

  it.each(FILES)('%s: every relative link and #anchor resolves', (file) => {
    const bad: string[] = [];
    const found = links(text(file));
    for (const target of found) {
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const to = path === '' ? join(ROOT, file) : join(ROOT, dirname(file), decodeURI(path));
      if (!existsSync(to)) {
        bad.push(`${target}: no file ${relative(ROOT, to)}`);
        continue;
      }
      if (anchor !== undefined && !anchors(readFileSync(to, 'utf8')).has(anchor)) bad.push(`${target}: no heading #${anchor} in ${relative(ROOT, to)}`);
    }
    expect(bad).toEqual([]);
    if (file !== 'README.md') expect(found.length, `${file} links somewhere`).toBeGreaterThan(0);
  });

  it('the README is at most 250 lines and opens with the two commands', () => {
    const readme = text('README.md');
    expect(readme.split('\n').length).toBeLessThanOrEqual(250);
    const first = /^```sh\n([\s\S]*?)```/.exec(readme);
    expect(first?.[1]).toMatch(/^npm ci && npm start /m);
    expect(first?.[1]).toMatch(/^npm ci && npm test /m);
  });

  it('the README links the index, and the index every guide', () => {
    expect(links(text('README.md'))).toContain('docs/README.md');
    const index = links(text('docs/README.md')).map((t) => t.split('#')[0]);
    for (const guide of FILES.filter((f) => f.startsWith('docs/') && f !== 'docs/README.md')) expect(index, guide).toContain(guide.slice('docs/'.length));
  });
});

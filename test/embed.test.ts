/**
 * examples/embed.ts, run as a user would run it (its own Node process, tsx loader): it must load
 * the demo, run a session, save PNG frames, stop, shut down and exit 0 by itself.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterEach, describe, expect, it } from 'vitest';
import { childPool } from './helpers/child.ts';

const TIME_LIMIT_MS = 60_000;
const children = childPool();
const dirs: string[] = [];

afterEach(async () => {
  await children.killAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('examples/embed.ts', () => {
  it(
    'runs a session, saves 128×128 PNG frames and exits 0 on its own',
    async () => {
      const out = mkdtempSync(join(tmpdir(), 'framehost-embed-'));
      dirs.push(out);
      const child = children.start(['--import', 'tsx', 'examples/embed.ts', out], {
        env: { ...process.env, FRAMEHOST_LOG_LEVEL: 'warn' },
      });
      const exit = await child.exitWithin(TIME_LIMIT_MS - 5_000);
      expect(exit, `stdout:\n${child.stdout}\nstderr:\n${child.stderr}`).toEqual({ code: 0, signal: null });

      expect(child.stdout).toMatch(/^loaded gray-scott \S+ on \S+ in \d+ ms$/m);
      expect(child.stdout).toMatch(/^stamp: true$/m);
      const ended = child.stdout.match(/^session ended: (\S+); saved (\d+) frames in (.+)$/m);
      expect(ended, child.stdout).not.toBeNull();
      expect(ended![1]).toBe('stopped');
      expect(ended![3]).toBe(out);

      const pngs = readdirSync(out).filter((f) => f.endsWith('.png')).sort();
      expect(pngs.length).toBeGreaterThan(0);
      expect(pngs.length).toBe(Number(ended![2]));
      for (const f of pngs) {
        expect(f).toMatch(/^frame-\d{4}\.png$/);
        const png = PNG.sync.read(readFileSync(join(out, f)));
        expect([png.width, png.height]).toEqual([128, 128]);
        expect(png.data.byteLength).toBe(128 * 128 * 4);
      }
      // Not a blank image: the Gray-Scott field has structure (seed spots on a background).
      const first = PNG.sync.read(readFileSync(join(out, pngs[0]!)));
      const distinct = new Set<number>();
      for (let i = 0; i < first.data.length; i += 4) distinct.add(first.data.readUInt32BE(i));
      expect(distinct.size).toBeGreaterThan(1);
    },
    TIME_LIMIT_MS,
  );
});

/**
 * The journal's bounds and failures: the per-session size cap, the folder cap (oldest removed
 * first, nothing else touched), a folder that cannot be written and a full disk (ENOSPC injected
 * into the file handle's write). None of them may affect the session being recorded.
 */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { JournalLine } from '../src/journal/format.ts';
import type { JournalWritten } from '../src/journal/recorder.ts';
import { createRuntime, type Runtime, type RuntimeOptions } from '../src/runtime/runtime.ts';
import { readJournal } from '../src/journal/replay-script.ts';
import { replaySession } from '../src/journal/replay.ts';
import { modelSource } from '../src/model/load.ts';
import { tempDirs } from './helpers/cli.ts';
import { recordOptions } from '../src/journal/cli-options.ts';
import { UsageError } from '../src/cli/args.ts';
import { quietLogger, until } from './helpers/runtime.ts';

const dirs = tempDirs();
const runtimes: Runtime[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const rt of runtimes.splice(0)) await rt.shutdown();
  dirs.removeAll();
});

/** A runtime whose log lines (JSON) are kept for the test to read. */
async function runtime(options: RuntimeOptions): Promise<{ rt: Runtime; logs: Record<string, unknown>[] }> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const rt = await createRuntime({ logger: pino({ level: 'warn' }, sink), modelOptions: { size: 16, fps: 0 }, ...options });
  runtimes.push(rt);
  await rt.ready();
  return { rt, logs };
}

/** One session of about `ms` milliseconds; its summary and its journal. */
async function session(rt: Runtime, ms: number): Promise<{ frames: number; reason: string; journal: JournalWritten }> {
  const written = new Promise<JournalWritten>((resolve) => {
    const off = rt.on('journal.written', (j) => (off(), resolve(j)));
  });
  const s = rt.start();
  if (!s.ok) throw new Error(s.error.message);
  let frames = 0;
  const off = rt.on('frame', () => frames++);
  await new Promise((r) => setTimeout(r, ms));
  rt.command('stamp', { x: 3, y: 3, radius: 2 });
  await new Promise((r) => setTimeout(r, ms));
  rt.stop();
  const end = await rt.whenSessionOver(s.sessionId);
  off();
  return { frames, reason: end?.reason ?? 'none', journal: await written };
}

const lines = (path: string): JournalLine[] => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as JournalLine);

describe('journal limits', () => {
  it('stops a session\'s journal at its size cap, writes the end, and replays what it kept', async () => {
    const dir = dirs.make('journal');
    const { rt, logs } = await runtime({ record: { dir, maxSessionBytes: 16 * 1024, hashEvery: 1 } });
    const { frames, reason, journal } = await session(rt, 250);
    // The session is untouched: it ran and ended as asked, with many more frames than the file holds.
    expect(reason).toBe('stopped');
    expect(journal.truncated).toBe(true);
    expect(statSync(journal.path).size).toBeLessThanOrEqual(16 * 1024);
    const kept = lines(journal.path);
    const frameLines = kept.filter((l) => l.type === 'frame');
    expect(frames).toBeGreaterThan(frameLines.length * 2);
    const cut = kept.find((l) => l.type === 'truncated');
    expect(cut).toMatchObject({ type: 'truncated', at: expect.any(Number) });
    expect(kept.at(-1)).toMatchObject({ type: 'end', reason: 'stopped', frames });
    expect(logs.some((l) => String(l.msg).includes('size cap reached'))).toBe(true);

    // Replay stops where the journal was cut and verifies every hash before the cut.
    const parsed = await readJournal(journal.path);
    const report = await replaySession(parsed, { out: dirs.make('replay'), logger: quietLogger() });
    const at = cut?.type === 'truncated' ? cut.at : -1;
    expect(report).toMatchObject({ ok: true, frames: at, expectedFrames: at });
    expect(report.hashesChecked).toBe(frameLines.filter((l) => l.type === 'frame' && l.seq < at).length);
    expect(report.hashesMatched).toBe(report.hashesChecked);
    expect(report.warnings.join(' ')).toContain('cut short');
  });

  it('keeps the folder under its cap by removing the oldest journals, and nothing else', async () => {
    const dir = dirs.make('journal');
    const cap = 20 * 1024;
    // Larger than the cap: only journal files count toward it, so this one changes nothing.
    writeFileSync(join(dir, 'notes.txt'), 'not a journal\n'.repeat(3000));
    const { rt } = await runtime({ record: { dir, maxSessionBytes: 8 * 1024, maxFolderBytes: cap, hashEvery: 1 } });
    const paths: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { journal, reason } = await session(rt, 100);
      expect(reason).toBe('stopped');
      paths.push(journal.path.split('/').pop()!);
      const names = readdirSync(dir);
      const total = names.filter((n) => n.endsWith('.jsonl')).reduce((sum, n) => sum + statSync(join(dir, n)).size, 0);
      expect(total).toBeLessThanOrEqual(cap);
      expect(names).toContain('notes.txt');
      expect(names).toContain(paths[i]);
    }
    // What is left is the newest journals: the oldest went first, and some had to go.
    const left = readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort();
    expect(left.length).toBeLessThan(paths.length);
    expect(left.length).toBeGreaterThan(1);
    expect(left).toEqual(paths.slice(-left.length).sort());
  });

  it('logs a folder that cannot be written and runs the session as if nothing happened', async () => {
    const base = dirs.make('journal');
    const file = join(base, 'a-file');
    writeFileSync(file, 'x');
    const { rt, logs } = await runtime({ record: { dir: join(file, 'journals') } });
    const { frames, reason, journal } = await session(rt, 100);
    expect(reason).toBe('stopped');
    expect(frames).toBeGreaterThan(5);
    expect(journal).toMatchObject({ failed: true, bytes: 0 });
    await until('the warning', () => logs.some((l) => String(l.msg).includes('this session is not recorded')));
    // The next session runs too.
    expect((await session(rt, 50)).reason).toBe('stopped');
  });

  it('logs a full disk (ENOSPC on write) and runs the session as if nothing happened', async () => {
    const dir = dirs.make('journal');
    // The disk fills up under the journal: every write of a file handle fails as a full disk does.
    const probe = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => Promise<unknown> };
    await probe.close();
    const full = vi.spyOn(proto, 'write').mockRejectedValue(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    const { rt, logs } = await runtime({ record: { dir } });
    const { frames, reason, journal } = await session(rt, 100);
    expect(full).toHaveBeenCalled();
    expect(reason).toBe('stopped');
    expect(frames).toBeGreaterThan(5);
    expect(journal).toMatchObject({ failed: true, bytes: 0 });
    const warning = logs.find((l) => String(l.msg).includes('write failed'));
    expect(JSON.stringify(warning)).toContain('ENOSPC');
    full.mockRestore();
    expect((await session(rt, 50)).journal).toMatchObject({ failed: false });
  });

  it('takes --record-max-mb and --record-folder-mb in MiB with fractions, and refuses what is not a size', () => {
    expect(recordOptions({ record: 'd', 'record-max-mb': '0.5', 'record-folder-mb': '2.25' })).toMatchObject({ maxSessionBytes: 512 * 1024, maxFolderBytes: 2.25 * 2 ** 20 });
    expect(recordOptions({ record: 'd', 'record-max-mb': '3' })).toMatchObject({ maxSessionBytes: 3 * 2 ** 20, maxFolderBytes: 2 ** 30 });
    // The smallest cap still holds a journal's header and end; every one is accepted by the recorder.
    expect(recordOptions({ record: 'd', 'record-max-mb': '0.01' })?.maxSessionBytes).toBe(10_486);
    for (const bad of ['0.001', '-1', '1e3', 'abc', '1.', '']) {
      expect(() => recordOptions({ record: 'd', 'record-max-mb': bad }), bad).toThrow(UsageError);
    }
  });

  it('refuses caps that cannot work', async () => {
    await expect(createRuntime({ logger: quietLogger(), record: { dir: '/tmp/x', maxSessionBytes: 100 } })).rejects.toThrow(/maxSessionBytes/);
    await expect(createRuntime({ logger: quietLogger(), record: { dir: '/tmp/x', maxSessionBytes: 1 << 20, maxFolderBytes: 1 << 19 } })).rejects.toThrow(/maxFolderBytes/);
  });
});

describe('the journal names its model', () => {
  it('by an absolute path when given a relative one, so replay from another folder finds it', async () => {
    const relativeModel = join('test', 'fixtures', 'models', 'gray-scott-variant.ts');
    const { rt } = await runtime({ model: relativeModel, record: { dir: dirs.make('journal') } });
    const { journal } = await session(rt, 60);
    const header = JSON.parse(readFileSync(journal.path, 'utf8').split('\n')[0]!) as Extract<JournalLine, { type: 'session' }>;
    expect(header.model.source).toBe(resolve(relativeModel));
  });

  it('by its built-in name or its URL as given', () => {
    expect(['gray-scott', 'demo', 'video-filter', 'https://example.test/m.js', undefined].map(modelSource)).toEqual(['gray-scott', 'demo', 'video-filter', 'https://example.test/m.js', 'gray-scott']);
  });
});

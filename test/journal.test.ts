/**
 * Session journal and replay, end to end: live sessions over real Socket.IO with the real
 * worker and ONNX Runtime are journaled, then replayed by the `framehost replay` command line;
 * the replayed frames must be byte-identical to the frames the client received and every
 * recorded hash must match. A changed model must be caught at the first frame it changes.
 */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientFrame } from '../src/client/client.ts';
import type { JournalLine } from '../src/journal/format.ts';
import type { JournalWritten } from '../src/journal/recorder.ts';
import type { Runtime } from '../src/runtime/runtime.ts';
import { Cli, runRaw, tempDirs } from './helpers/cli.ts';
import { recordFrames, sleep, startServer, type Harness } from './helpers/server.ts';

const VARIANT_MODEL = fileURLToPath(new URL('./fixtures/models/gray-scott-variant.ts', import.meta.url));

const dirs = tempDirs();
const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
  dirs.removeAll();
});

async function server(...args: Parameters<typeof startServer>): Promise<Harness> {
  const h = await startServer(...args);
  harnesses.push(h);
  await h.rt.ready();
  return h;
}

function nextJournal(rt: Runtime): Promise<JournalWritten> {
  return new Promise((resolve) => {
    const off = rt.on('journal.written', (j) => {
      off();
      resolve(j);
    });
  });
}

function lines(path: string): JournalLine[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as JournalLine);
}

interface Report {
  ok: boolean;
  frames: number;
  expectedFrames: number;
  hashesChecked: number;
  hashesMatched: number;
  firstDifference: { seq: number } | null;
  warnings: string[];
}

async function replay(path: string, out: string, extra: string[] = []): Promise<{ code: number | null; report: Report; stderr: string }> {
  const r = await runRaw(['replay', path, '--out', out, ...extra]);
  const report = JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null') as Report;
  return { code: r.code, report, stderr: r.stderr };
}

/** Every frame the client received must equal the replay's PNG of the same index, byte for byte. */
function expectSameFrames(received: readonly ClientFrame[], out: string): void {
  expect(received.length).toBeGreaterThan(10);
  for (const f of received) {
    const png = PNG.sync.read(readFileSync(join(out, `frame-${String(f.meta.seq).padStart(6, '0')}.png`)));
    expect(png.width).toBe(f.meta.width);
    const same = Buffer.compare(png.data, Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength)) === 0;
    if (!same) throw new Error(`replayed frame ${f.meta.seq} differs from the live one`);
  }
}

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;

describe('session journal and replay', () => {
  it('replays a gray-scott session commanded at random moments over Socket.IO, byte for byte', async () => {
    const dir = dirs.make('journal');
    const h = await server({ modelOptions: { size: 64, fps: 100 }, record: { dir, hashEvery: 3 } });
    const client = await h.client();
    const rec = recordFrames(client);
    const written = nextJournal(h.rt);
    const { token } = await client.start({ encoding: 'raw' });
    const sent: string[] = [];
    for (let i = 0; i < 16; i++) {
      await sleep(Math.random() * 40);
      const kind = pick(['stamp', 'preset', 'palette'] as const);
      if (kind === 'stamp') await client.command('stamp', { x: Math.floor(Math.random() * 64), y: Math.floor(Math.random() * 64), radius: 1 + Math.floor(Math.random() * 8) });
      else if (kind === 'preset') await client.command('preset', { name: pick(['coral', 'mitosis', 'spots', 'worms', 'maze', 'waves']) });
      else await client.command('palette', { name: pick(['ocean', 'ember', 'mono', 'neon']) });
      sent.push(kind);
    }
    await sleep(60);
    await client.stop();
    const journal = await written;
    expect(journal).toMatchObject({ truncated: false, failed: false });
    rec.stop();

    const recorded = lines(journal.path);
    expect(recorded[0]).toMatchObject({ type: 'session', model: { name: 'gray-scott', version: '1.0.0', source: 'gray-scott' }, options: { size: 64, fps: 100 } });
    const commands = recorded.filter((l) => l.type === 'command');
    expect(commands.map((c) => c.name)).toEqual(sent);
    for (const c of commands) expect(c).toMatchObject({ at: expect.any(Number), check: expect.any(Number) });
    const end = recorded.at(-1)!;
    expect(end).toMatchObject({ type: 'end', reason: 'stopped', stopCheck: expect.any(Number) });
    // No secrets: neither the owner's token nor its socket id is in the file.
    const text = readFileSync(journal.path, 'utf8');
    expect(text).not.toContain(token);
    expect(text).not.toContain(client.socket.id!);

    const out = dirs.make('replay');
    const { code, report } = await replay(journal.path, out);
    const hashLines = new Set(recorded.filter((l) => l.type === 'frame').map((l) => l.seq)).size;
    expect(report).toMatchObject({ ok: true, firstDifference: null, hashesChecked: hashLines, hashesMatched: hashLines });
    // The frames the live worker made: those delivered and those it dropped (the main thread behind).
    expect(report.frames).toBe(end.type === 'end' ? end.frames + end.dropped : -1);
    expect(code).toBe(0);
    expect(readdirSync(out).filter((n) => n.endsWith('.png'))).toHaveLength(report.frames);
    expectSameFrames(rec.frames, out);
  });

  it('replays every frame of a session whose worker dropped frames (the main thread was behind)', async () => {
    const dir = dirs.make('journal');
    // Unpaced, one frame in flight: while this thread is busy the worker drops what it makes.
    const h = await server({ modelOptions: { size: 32, fps: 0 }, maxFramesInFlight: 1, record: { dir, hashEvery: 1 } });
    const client = await h.client();
    const written = nextJournal(h.rt);
    await client.start({ encoding: 'raw' });
    for (let i = 0; i < 4; i++) {
      await sleep(30);
      await client.command('stamp', { x: 4 + i * 6, y: 10, radius: 3 });
      const busyUntil = Date.now() + 60;
      while (Date.now() < busyUntil); // the main thread is behind: the worker drops frames
    }
    await sleep(30);
    await client.stop();
    const journal = await written;
    const recorded = lines(journal.path);
    const end = recorded.at(-1)!;
    if (end.type !== 'end') throw new Error('no end line');
    expect(end.dropped).toBeGreaterThan(0);
    const hashed = new Set(recorded.filter((l) => l.type === 'frame').map((l) => l.seq));
    // Some hashed frames come after the first drop: index past the delivered count.
    expect(Math.max(...hashed)).toBeGreaterThanOrEqual(end.frames);

    const { code, report, stderr } = await replay(journal.path, dirs.make('replay'));
    expect(report).toMatchObject({ ok: true, firstDifference: null, frames: end.frames + end.dropped, expectedFrames: end.frames + end.dropped });
    expect(report.hashesChecked).toBe(hashed.size);
    expect(report.hashesMatched).toBe(hashed.size);
    expect(stderr).not.toContain('ran past');
    expect(code).toBe(0);
  });

  it('replays a video-filter session with recorded camera frames and filter commands', async () => {
    const dir = dirs.make('journal');
    const h = await server({ model: 'video-filter', record: { dir, recordInputs: true, hashEvery: 1 } });
    const client = await h.client();
    const rec = recordFrames(client);
    const written = nextJournal(h.rt);
    await client.start({ encoding: 'raw' });
    await sleep(80); // a few frames of the test pattern first
    for (let i = 0; i < 14; i++) {
      const data = new Uint8Array(256 * 256 * 4);
      for (let p = 0; p < 256 * 256; p++) data.set([(p + i * 37) & 255, (p >> 8) ^ (i * 11), (i * 53) & 255, 255], p * 4);
      await client.publish('camera', { data, width: 256, height: 256, format: 'rgba' }, { ack: true });
      await sleep(Math.random() * 60);
      if (i % 4 === 1) await client.command('mode', { name: pick(['edges', 'toon', 'original']) });
      if (i % 5 === 2) await client.command('strength', { value: Math.round(Math.random() * 100) / 100 });
    }
    await sleep(60);
    await client.stop();
    const journal = await written;
    rec.stop();
    const recorded = lines(journal.path);
    expect(recorded.filter((l) => l.type === 'input')).toHaveLength(14);
    expect(recorded.filter((l) => l.type === 'input' && l.bytes)).toHaveLength(14);
    expect(recorded.filter((l) => l.type === 'read').length).toBeGreaterThan(0);

    const out = dirs.make('replay');
    const { code, report } = await replay(journal.path, out);
    expect(report).toMatchObject({ ok: true, firstDifference: null, warnings: [] });
    expect(report.hashesMatched).toBe(report.hashesChecked);
    expect(report.hashesChecked).toBe(new Set(recorded.filter((l) => l.type === 'frame').map((l) => l.seq)).size);
    expect(code).toBe(0);
    expectSameFrames(rec.frames, out);
  });

  it('reports the first frame that differs when the model changed between record and replay', async () => {
    const dir = dirs.make('journal');
    const h = await server({ modelOptions: { size: 64, fps: 100 }, record: { dir, hashEvery: 1 } });
    const client = await h.client();
    const written = nextJournal(h.rt);
    await client.start({ encoding: 'raw' });
    await sleep(100);
    await client.command('palette', { name: 'neon' });
    await sleep(50);
    await client.command('stamp', { x: 20, y: 30, radius: 6 });
    await sleep(80);
    await client.stop();
    const journal = await written;
    const stamp = lines(journal.path).find((l) => l.type === 'command' && l.name === 'stamp');
    if (stamp?.type !== 'command' || !('at' in stamp)) throw new Error('no applied stamp in the journal');
    expect(stamp.at).toBeGreaterThan(0);

    // The same model replays clean; the variant (a wider stamp) differs exactly where the stamp took effect.
    const same = await replay(journal.path, dirs.make('replay'));
    expect(same.code).toBe(0);
    const changed = await replay(journal.path, dirs.make('replay'), ['--model', VARIANT_MODEL]);
    expect(changed.code).toBe(1);
    expect(changed.report.ok).toBe(false);
    expect(changed.report.firstDifference?.seq).toBe(stamp.at);
    expect(changed.report.hashesMatched).toBe(stamp.at); // every frame before it still matches
    expect(changed.stderr).toContain(`frame ${stamp.at} differs`);
    expect(changed.report.warnings.join(' ')).toContain('1.0.0-wider-stamp');

    // A changed model option is caught too (here from the first frame on).
    const option = await replay(journal.path, dirs.make('replay'), ['--model-option', 'steps=7']);
    expect(option.code).toBe(1);
    expect(option.report.firstDifference?.seq).toBe(0);
  });

  it('records with framehost headless --record and replays the file', async () => {
    const dir = dirs.make('journal');
    const cli = new Cli(['headless', '--out', dirs.make('frames'), '--record', dir, '--record-hash-every', '2', '--model-option', 'size=32']);
    cli.send({ type: 'start' }, { type: 'wait', frames: 5 }, { type: 'command', name: 'stamp', args: { x: 5, y: 6, radius: 3 } }, { type: 'wait', frames: 10 }, { type: 'command', name: 'preset', args: { name: 'maze' } }, { type: 'wait', frames: 20 }, { type: 'stop' });
    cli.end();
    expect(await cli.exitWithin(30_000)).toBe(0);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    const path = join(dir, files[0]!);
    const recorded = lines(path);
    expect(recorded[0]).toMatchObject({ type: 'session', hashEvery: 2, options: { size: 32 } });
    expect(recorded.filter((l) => l.type === 'command').map((l) => l.name)).toEqual(['stamp', 'preset']);
    const { code, report } = await replay(path, dirs.make('replay'));
    expect(report).toMatchObject({ ok: true, firstDifference: null });
    expect(report.hashesChecked).toBeGreaterThan(5);
    expect(code).toBe(0);
  });

  it('replays through the recorded model, whatever FRAMEHOST_MODEL says (only --model replaces it)', async () => {
    const dir = dirs.make('journal');
    const cli = new Cli(['headless', '--out', dirs.make('frames'), '--record', dir, '--record-hash-every', '1', '--model-option', 'size=32']);
    cli.send({ type: 'start' }, { type: 'wait', frames: 3 }, { type: 'command', name: 'stamp', args: { x: 5, y: 6, radius: 3 } }, { type: 'wait', frames: 6 }, { type: 'stop' });
    cli.end();
    expect(await cli.exitWithin(30_000)).toBe(0);
    const path = join(dir, readdirSync(dir)[0]!);
    // The replay's process inherits this environment: a shell set up for `serve` of another model.
    const before = process.env.FRAMEHOST_MODEL;
    process.env.FRAMEHOST_MODEL = VARIANT_MODEL;
    try {
      const { code, report } = await replay(path, dirs.make('replay'));
      expect(report).toMatchObject({ ok: true, firstDifference: null });
      expect(report.warnings.join(' ')).not.toContain('wider-stamp');
      expect(code).toBe(0);
    } finally {
      if (before === undefined) delete process.env.FRAMEHOST_MODEL;
      else process.env.FRAMEHOST_MODEL = before;
    }
  });

  it('refuses, in one line, a journal whose commands the replay model lacks, and an --out folder that is not empty', async () => {
    const dir = dirs.make('journal');
    const cli = new Cli(['headless', '--out', dirs.make('frames'), '--record', dir, '--record-hash-every', '1', '--model-option', 'size=32']);
    cli.send({ type: 'start' }, { type: 'wait', frames: 3 }, { type: 'command', name: 'stamp', args: { x: 5, y: 6, radius: 3 } }, { type: 'command', name: 'palette', args: { name: 'neon' } }, { type: 'wait', frames: 6 }, { type: 'stop' });
    cli.end();
    expect(await cli.exitWithin(30_000)).toBe(0);
    const path = join(dir, readdirSync(dir)[0]!);

    // Another model: one line naming what it lacks and what the journal was recorded with; no frames, no log lines.
    const otherOut = dirs.make('replay');
    const other = await runRaw(['replay', path, '--out', otherOut, '--model', 'video-filter']);
    expect(other.code).toBe(2);
    expect(other.stdout).toBe('');
    expect(other.stderr.trim().split('\n')).toEqual([
      'framehost replay: video-filter 1.0.0 has no commands "stamp", "palette"; the journal was recorded with gray-scott 1.0.0 (replay it with --model gray-scott); nothing was replayed',
    ]);
    expect(readdirSync(otherOut)).toEqual([]);

    // A folder with an earlier replay's frames in it: refused, and nothing in it touched.
    const out = dirs.make('replay');
    writeFileSync(join(out, 'frame-000999.png'), 'stale');
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const refused = await runRaw(['replay', path, '--out', out]);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split('\n')[0]).toBe(`framehost: replay: --out ${out} is not empty (2 entries): choose a new folder, or --force to replace its frame-NNNNNN.png files`);
    expect(readdirSync(out).sort()).toEqual(['frame-000999.png', 'notes.txt']);
    // --force: the old frames go, other files stay, the folder holds exactly this replay's frames.
    const forced = await replay(path, out, ['--force']);
    expect(forced.code).toBe(0);
    const pngs = readdirSync(out).filter((n) => n.endsWith('.png'));
    expect(pngs).toHaveLength(forced.report.frames);
    expect(pngs).not.toContain('frame-000999.png');
    expect(readFileSync(join(out, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('says clearly that --video needs ffmpeg when it is not installed', async () => {
    const r = await runRaw(['replay', 'any.jsonl', '--out', dirs.make('replay'), '--video', 'out.webm']);
    let ffmpeg = true;
    try {
      statSync('/usr/bin/ffmpeg');
    } catch {
      ffmpeg = false;
    }
    if (ffmpeg) {
      // With ffmpeg the journal is read first: this one does not exist.
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('cannot read any.jsonl');
    } else {
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--video needs ffmpeg, which is not installed');
    }
  });

  it('refuses a file that is not a journal', async () => {
    const file = join(dirs.make('replay'), 'x.jsonl');
    writeFileSync(file, '{"type":"frame"}\n');
    const r = await runRaw(['replay', file, '--out', dirs.make('replay')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('not a session header');
    const missing = await runRaw(['replay', '--out', dirs.make('replay')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('which journal?');
    const extra = await runRaw(['replay', file, 'another.jsonl', '--out', dirs.make('replay')]);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain('expected one FILE, got 2');
  });
});

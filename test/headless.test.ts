/**
 * `framehost headless`, end to end: the real launcher (bin/framehost.mjs) in a child process,
 * driven through stdin, checked through its stdout JSON lines and the PNG files it writes.
 *
 * The field is 128×128, not 64×64: at 64 the demo's twelve seed spots and their halos cover
 * three quarters of the field, leaving no quiet spot where a stamp is the only possible change.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterEach, describe, expect, it } from 'vitest';
import { Cli, tempDirs, ROOT, runRaw, type OutLine } from './helpers/cli.ts';
import { parseCommandLine, parseModelOptions, UsageError } from '../src/cli/args.ts';
import { readLines, type InputLine } from '../src/cli/headless/lines.ts';
import { parseRequest } from '../src/cli/headless/request.ts';
import { encodePng } from '../src/util/png.ts';

const SIZE = 128;
const TEST_TIMEOUT_MS = 60_000;



interface Image {
  readonly width: number;
  readonly height: number;
  readonly data: Buffer;
}

function readPng(dir: string, file: string): Image {
  return PNG.sync.read(readFileSync(join(dir, file)));
}

/** Largest channel difference between two RGBA pixels at (x, y), wrapping like the demo's torus. */
function pixelDiff(a: Image, b: Image, x: number, y: number): number {
  const i = (((y + a.height) % a.height) * a.width + ((x + a.width) % a.width)) * 4;
  return Math.max(Math.abs(a.data[i]! - b.data[i]!), Math.abs(a.data[i + 1]! - b.data[i + 1]!), Math.abs(a.data[i + 2]! - b.data[i + 2]!));
}

/** The most common colour: the demo's empty background. */
function backgroundOf(img: Image): Image {
  const counts = new Map<number, number>();
  for (let i = 0; i < img.data.length; i += 4) {
    const rgba = img.data.readUInt32BE(i);
    counts.set(rgba, (counts.get(rgba) ?? 0) + 1);
  }
  const [rgba] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
  const data = Buffer.alloc(img.data.length);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32BE(rgba, i);
  return { width: img.width, height: img.height, data };
}

/** The point farthest (square distance) from anything that is not background, and that distance. */
function quietestSpot(img: Image): { x: number; y: number; clearance: number } {
  const bg = backgroundOf(img);
  const quiet = (x: number, y: number): boolean => pixelDiff(img, bg, x, y) <= 8;
  let best = { x: 0, y: 0, clearance: -1 };
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      let r = 0;
      while (r < img.width / 2 && ringIsQuiet(x, y, r, quiet)) r++;
      if (r > best.clearance) best = { x, y, clearance: r };
    }
  }
  return best;
}

function ringIsQuiet(cx: number, cy: number, r: number, quiet: (x: number, y: number) => boolean): boolean {
  for (let d = -r; d <= r; d++) {
    if (!quiet(cx + d, cy - r) || !quiet(cx + d, cy + r) || !quiet(cx - r, cy + d) || !quiet(cx + r, cy + d)) return false;
  }
  return true;
}

/** Pixels in the (2r+1)² box around (x, y) that differ by more than `threshold` in some channel. */
function changedAround(a: Image, b: Image, x: number, y: number, r: number, threshold: number): number {
  let n = 0;
  for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (pixelDiff(a, b, x + dx, y + dy) > threshold) n++;
  return n;
}

function framesIn(lines: OutLine[]): OutLine[] {
  return lines.filter((l) => l.event === 'frame');
}

describe('framehost headless', () => {
  let cli: Cli | undefined;
  const dirs = tempDirs();
  const tmp = dirs.make;

  afterEach(() => {
    cli?.kill();
    cli = undefined;
    dirs.removeAll();
  });

  it(
    'runs a session from stdin, writes PNG frames, applies a stamp and survives bad lines',
    async () => {
      const out = tmp();
      cli = new Cli(['headless', '--out', out, '--model-option', 'fps=30', '--model-option', `size=${SIZE}`]);
      await cli.next((l) => l.event === 'ready');

      cli.send({ type: 'start' }, { type: 'wait', frames: 5 });
      expect(await cli.reply(1)).toMatchObject({ event: 'accepted', type: 'start' });
      expect(await cli.reply(2)).toMatchObject({ event: 'waited', frames: 5 });

      // Everything written so far predates the stamp: lines are handled in order.
      const before = readPng(out, framesIn(cli.lines).at(-1)!.file as string);
      const spot = quietestSpot(before);
      expect(spot.clearance, 'a quiet spot to stamp into').toBeGreaterThanOrEqual(12);

      const tooLong = JSON.stringify({ type: 'command', name: 'stamp', args: { x: 1, y: 1 }, pad: 'x'.repeat(70 * 1024) });
      cli.send(
        { type: 'command', name: 'stamp', args: { x: spot.x, y: spot.y, radius: 4 } }, // 3
        { type: 'wait', frames: 10 }, // 4
        'not json', // 5
        { type: 'command', name: 'nope' }, // 6
        { type: 'command', name: 'stamp', args: { x: 'a' } }, // 7
        { type: 'bogus' }, // 8
        { type: 'wait', frames: 0 }, // 9
        tooLong, // 10
        { type: 'wait', frames: 3 }, // 11
        { type: 'stop' }, // 12
      );
      cli.end();

      expect(await cli.exited).toBe(0);
      const reply = (line: number): OutLine | undefined => cli!.lines.find((l) => l.line === line);
      expect(reply(3)).toMatchObject({ event: 'accepted', type: 'command', name: 'stamp' });
      expect(reply(4)).toMatchObject({ event: 'waited', frames: 10 });
      expect(reply(5)).toMatchObject({ event: 'error', error: { code: 'bad_request' } });
      expect(reply(6)).toMatchObject({ event: 'error', error: { code: 'unknown_command' } });
      expect(reply(7)).toMatchObject({ event: 'error', error: { code: 'invalid_args' } });
      expect(reply(8)).toMatchObject({ event: 'error', error: { code: 'bad_request' } });
      expect(reply(9)).toMatchObject({ event: 'error', error: { code: 'bad_request' } });
      expect(reply(10)).toMatchObject({ event: 'error', error: { code: 'payload_too_large' } });
      // The bad lines changed nothing: the session ran on and frames kept coming.
      expect(reply(11)).toMatchObject({ event: 'waited', frames: 3 });
      expect(reply(12)).toMatchObject({ event: 'accepted', type: 'stop' });
      expect(cli.lines.filter((l) => l.event === 'session.ended')).toEqual([expect.objectContaining({ reason: 'stopped' })]);
      expect(cli.lines.at(-1)).toMatchObject({ event: 'state', state: 'shutdown' });

      // Every frame line names a PNG that exists and decodes at the model's size; nothing else was written.
      const frames = framesIn(cli.lines);
      expect(frames.map((f) => f.index)).toEqual(frames.map((_, i) => i + 1));
      expect(readdirSync(out).sort()).toEqual(frames.map((f) => f.file));
      for (const f of frames) {
        const img = readPng(out, f.file as string);
        expect([img.width, img.height]).toEqual([SIZE, SIZE]);
      }

      // The field evolves on its own...
      const first = readPng(out, frames[0]!.file as string);
      const last = readPng(out, frames.at(-1)!.file as string);
      expect(changedAround(first, last, SIZE / 2, SIZE / 2, SIZE / 2 - 1, 0)).toBeGreaterThan(0);
      // ...and the stamp lit up the quiet spot, which nothing else could have reached in 10 frames.
      const after = readPng(out, frames[(reply(4)!.written as number) - 1]!.file as string);
      expect(changedAround(before, after, spot.x, spot.y, 2, 24)).toBeGreaterThanOrEqual(20);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    '--frames N writes N frames, stops the session and exits without waiting for stdin',
    async () => {
      const out = tmp();
      cli = new Cli(['headless', '--out', out, '--frames', '3', '--model-option', 'fps=30', '--model-option', 'size=64']);
      cli.send({ type: 'start' }); // stdin stays open
      expect(await cli.exited).toBe(0);
      expect(readdirSync(out).sort()).toEqual(['frame-000001.png', 'frame-000002.png', 'frame-000003.png']);
      expect(cli.lines.find((l) => l.event === 'session.ended')).toMatchObject({ reason: 'stopped' });
    },
    TEST_TIMEOUT_MS,
  );

  // Issue 11: stdin's end stopped the session before its first frame, so this wrote 0 frames.
  it(
    "with -n N, stdin's end lets the session write its N frames: echo start | framehost headless -n 3",
    async () => {
      const out = tmp();
      cli = new Cli(['headless', '--out', out, '-n', '3', '--model-option', 'fps=30', '--model-option', 'size=64']);
      cli.send({ type: 'start' });
      cli.end(); // at once, as `echo … |` does: before the model has even loaded
      expect(await cli.exitWithin(30_000)).toBe(0);
      expect(readdirSync(out).sort()).toEqual(['frame-000001.png', 'frame-000002.png', 'frame-000003.png']);
      expect(cli.lines.find((l) => l.line === 1)).toMatchObject({ event: 'accepted', type: 'start' });
      expect(cli.lines.find((l) => l.event === 'session.ended')).toMatchObject({ reason: 'stopped' });
    },
    TEST_TIMEOUT_MS,
  );

  // Issue 11: blank lines were skipped without a reply, where every line is promised one.
  it(
    'answers a blank line with one coded error, like any other malformed line',
    async () => {
      cli = new Cli(['headless', '--out', tmp(), '--model-option', 'size=32']);
      cli.send('', '   ', { type: 'stop' });
      cli.end();
      expect(await cli.exitWithin(30_000)).toBe(0);
      const replies = cli.lines.filter((l) => typeof l.line === 'number');
      expect(replies).toEqual([
        expect.objectContaining({ event: 'error', line: 1, error: expect.objectContaining({ code: 'bad_request' }) }),
        expect.objectContaining({ event: 'error', line: 2, error: expect.objectContaining({ code: 'bad_request' }) }),
        expect.objectContaining({ event: 'error', line: 3, type: 'stop', error: expect.objectContaining({ code: 'no_session' }) }),
      ]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'stops a running session at stdin end and exits 0',
    async () => {
      cli = new Cli(['headless', '--out', tmp(), '--model-option', 'fps=30', '--model-option', 'size=64']);
      cli.send({ type: 'start' }, { type: 'wait', frames: 1 });
      cli.end();
      expect(await cli.exited).toBe(0);
      expect(cli.lines.find((l) => l.event === 'session.ended')).toMatchObject({ reason: 'stopped' });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'reports a model that cannot be loaded and exits 1',
    async () => {
      cli = new Cli(['headless', '--out', tmp(), '--model', join(ROOT, 'test', 'no-such-model.ts')]);
      cli.end();
      expect(await cli.exited).toBe(1);
      expect(cli.lines).toContainEqual(expect.objectContaining({ event: 'error', error: expect.objectContaining({ code: 'load_failed' }) }));
    },
    TEST_TIMEOUT_MS,
  );
});

describe('framehost command line', () => {
  it(
    'refuses an unknown command with the usage, exit 2; --help lists every option, exit 0',
    async () => {
      const bad = await runRaw(['bogus']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/unknown command "bogus"[\s\S]*Usage: framehost/);

      const help = await runRaw(['headless', '--help']);
      expect(help.code).toBe(0);
      for (const flag of ['headless', '--out', '--frames', '--model', '--model-option', '--log-level', '--help']) expect(help.stdout).toContain(flag);
    },
    TEST_TIMEOUT_MS,
  );

  it('parses shared options with flag > environment > default precedence', () => {
    const env = { FRAMEHOST_MODEL: 'env-model.ts', FRAMEHOST_LOG_LEVEL: 'debug' };
    expect(parseCommandLine('headless', ['--out', 'x'], {})).toMatchObject({ model: undefined, logLevel: 'warn', modelOptions: {} });
    expect(parseCommandLine('headless', ['--out', 'x'], env)).toMatchObject({ model: 'env-model.ts', logLevel: 'debug' });
    expect(parseCommandLine('headless', ['--model', 'flag.ts', '--log-level', 'error'], env)).toMatchObject({ model: 'flag.ts', logLevel: 'error' });
    expect(parseModelOptions(['size=64', 'fps=0.5', 'name=coral', 'hex=0x10', 'empty='])).toEqual({ size: 64, fps: 0.5, name: 'coral', hex: '0x10', empty: '' });
    expect(() => parseModelOptions(['novalue'])).toThrow(UsageError);
    expect(() => parseCommandLine('headless', ['--nope'], {})).toThrow(UsageError);
    expect(() => parseCommandLine('headless', ['--log-level', 'loud'], {})).toThrow(UsageError);
  });
});

describe('headless helpers', () => {
  async function collect(chunks: string[], max: number): Promise<InputLine[]> {
    const lines: InputLine[] = [];
    for await (const l of readLines(chunks.map((c) => Buffer.from(c)), max)) lines.push(l);
    return lines;
  }

  it('splits lines across chunks and drops over-long ones without buffering them', async () => {
    expect(await collect(['{"a"', ':1}\n\r\n', 'x'.repeat(10), 'y'.repeat(10), '\nlast'], 16)).toEqual([
      { line: 1, text: '{"a":1}' },
      { line: 2, text: '' },
      { line: 3, tooLong: true },
      { line: 4, text: 'last' },
    ]);
  });

  it('parses the four request types and refuses malformed ones with bad_request', () => {
    expect(parseRequest('{"type":"start"}')).toEqual({ ok: true, request: { type: 'start' } });
    expect(parseRequest('{"type":"stop"}')).toEqual({ ok: true, request: { type: 'stop' } });
    expect(parseRequest('{"type":"command","name":"clear"}')).toEqual({ ok: true, request: { type: 'command', name: 'clear', args: {} } });
    expect(parseRequest('{"type":"wait","frames":2}')).toEqual({ ok: true, request: { type: 'wait', frames: 2 } });
    for (const bad of ['nope', '[]', '"start"', '{}', '{"type":"wait","frames":1.5}', '{"type":"wait"}']) {
      expect(parseRequest(bad)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    }
  });

  it('encodes RGB and RGBA frames as PNGs that decode to the same pixels', () => {
    const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
    const fromRgb = PNG.sync.read(encodePng(rgb, 2, 2, 'rgb'));
    expect([...fromRgb.data]).toEqual([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 10, 20, 30, 255]);
    // A view into a larger buffer, as a block of frames is: only the view is encoded.
    const block = Uint8Array.from([9, 9, 9, 9, 1, 2, 3, 4]);
    expect([...PNG.sync.read(encodePng(block.subarray(4), 1, 1, 'rgba')).data]).toEqual([1, 2, 3, 4]);
  });
});

/**
 * `framehost headless --input TRACK=DIR`: PNG files fed into a model's input track, end to end.
 * The real launcher (bin/framehost.mjs) runs the built-in `video-filter` model in a child
 * process; its input files are generated here, in a temporary directory, and its output PNGs are
 * checked for the edges of what went in.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterEach, describe, expect, it } from 'vitest';
import { Cli, tempDirs, runRaw, type OutLine } from './helpers/cli.ts';
import { UsageError } from '../src/cli/args.ts';
import { decodeInputPng } from '../src/cli/headless/input-png.ts';
import { checkInputTracks, parseInputSources } from '../src/cli/headless/input-sources.ts';

const SIZE = 256;
const TEST_TIMEOUT_MS = 60_000;



// ---- pictures ----

/** A white square [x0, x1) × [y0, y1). */
interface Square {
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

/** Three squares, apart from each other; files a-, b-, c- so that name order is square order. */
const SQUARES: readonly Square[] = [
  { x0: 30, y0: 40, x1: 90, y1: 100 },
  { x0: 120, y0: 140, x1: 180, y1: 200 },
  { x0: 170, y0: 20, x1: 230, y1: 80 },
];

/** Black, opaque, with a white square: a PNG file's bytes (w×h, RGBA). */
function squarePng(sq: Square | null, width = SIZE, height = SIZE): Buffer {
  const png = new PNG({ width, height });
  png.data.fill(0);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  if (sq) for (let y = sq.y0; y < sq.y1; y++) for (let x = sq.x0; x < sq.x1; x++) png.data.fill(255, (y * width + x) * 4, (y * width + x) * 4 + 3);
  return PNG.sync.write(png);
}

interface Image {
  readonly width: number;
  readonly height: number;
  readonly data: Buffer;
}

const red = (img: Image, x: number, y: number): number => img.data[(y * img.width + x) * 4]!;

/** Points on the square's border, in the middle of each side (where the edge filter is brightest). */
function borderPoints(sq: Square): [number, number][] {
  const mx = Math.floor((sq.x0 + sq.x1) / 2);
  const my = Math.floor((sq.y0 + sq.y1) / 2);
  return [
    [sq.x0, my],
    [sq.x1 - 1, my],
    [mx, sq.y0],
    [mx, sq.y1 - 1],
  ];
}

/** Points inside the square, away from its border. */
function insidePoints(sq: Square): [number, number][] {
  const mx = Math.floor((sq.x0 + sq.x1) / 2);
  const my = Math.floor((sq.y0 + sq.y1) / 2);
  return [
    [mx, my],
    [sq.x0 + 6, sq.y0 + 6],
    [sq.x1 - 7, sq.y1 - 7],
  ];
}

/** Points outside every square, away from all borders. */
const OUTSIDE: [number, number][] = [
  [5, 5],
  [250, 250],
  [5, 250],
  [100, 20],
  [60, 200],
  [230, 130],
];

/**
 * Which square the filtered frame shows: its edges bright on its border, dark inside and outside,
 * and nothing of the other squares. -1 when it is none of them (the test pattern).
 */
function squareShown(img: Image): number {
  for (const [k, sq] of SQUARES.entries()) {
    const others = SQUARES.filter((_, j) => j !== k);
    const edges = borderPoints(sq).every(([x, y]) => red(img, x, y) > 200);
    const flat = [...insidePoints(sq), ...OUTSIDE, ...others.flatMap(borderPoints), ...others.flatMap(insidePoints)].every(([x, y]) => red(img, x, y) < 30);
    if (edges && flat) return k;
  }
  return -1;
}

// ---- tests ----

describe('framehost headless --input', () => {
  let cli: Cli | undefined;
  const dirs = tempDirs();
  const tmp = dirs.make;

  afterEach(() => {
    cli?.kill();
    cli = undefined;
    dirs.removeAll();
  });

  it(
    'feeds the PNG files of a directory, in name order and looping, into the camera track; the output shows their edges',
    async () => {
      const input = tmp('in');
      const out = tmp('out');
      SQUARES.forEach((sq, k) => writeFileSync(join(input, `${'abc'[k]}-square.png`), squarePng(sq)));
      writeFileSync(join(input, 'b2-small.png'), squarePng(null, 128, 128)); // wrong size: reported once, skipped
      writeFileSync(join(input, 'notes.txt'), 'not a picture'); // not .png: ignored

      cli = new Cli(['headless', '--model', 'video-filter', '--out', out, '--input', `camera=${input}`, '--input-fps', '20']);
      await cli.next((l) => l.event === 'ready');
      cli.send({ type: 'start' }, { type: 'wait', frames: 60 }, { type: 'stop' });
      cli.end();
      expect(await cli.exitWithin(40_000)).toBe(0);

      const reply = (line: number): OutLine | undefined => cli!.lines.find((l) => l.line === line);
      expect(reply(1)).toMatchObject({ event: 'accepted', type: 'start' });
      expect(reply(2)).toMatchObject({ event: 'waited', frames: 60 });
      expect(reply(3)).toMatchObject({ event: 'accepted', type: 'stop' });
      const ended = cli.lines.find((l) => l.event === 'session.ended')!;
      expect(ended).toMatchObject({ reason: 'stopped' });
      // 60 frames take well over a second; at 20 fps that is several rounds of the three files.
      expect(ended.inputs, 'input frames fed in the session').toBeGreaterThanOrEqual(7);

      // The wrong-size file: one error line, however many times the loop came round to it.
      const errors = cli.lines.filter((l) => l.event === 'error');
      expect(errors).toEqual([
        expect.objectContaining({ type: 'input', track: 'camera', file: 'b2-small.png', error: expect.objectContaining({ code: 'invalid_input', message: expect.stringContaining('128×128') }) }),
      ]);

      // Every output frame: the test pattern until the first input arrived, then the edges of
      // one square, never anything else.
      const frames = cli.lines.filter((l) => l.event === 'frame');
      expect(frames.length).toBeGreaterThanOrEqual(60);
      expect(readdirSync(out).sort()).toEqual(frames.map((f) => f.file));
      const shown = frames.map((f) => {
        const img = PNG.sync.read(readFileSync(join(out, f.file as string)));
        expect([img.width, img.height]).toEqual([SIZE, SIZE]);
        return squareShown(img);
      });
      const first = shown.findIndex((k) => k !== -1);
      expect(first, `squares shown per frame: ${shown.join(' ')}`).toBeGreaterThanOrEqual(0);
      expect(shown.slice(first), `squares shown per frame: ${shown.join(' ')}`).not.toContain(-1);
      // In name order from the first file, looping: a, b, c, a, b… (an input the model had no
      // time to read before the next one replaced it may be skipped, hence "mostly").
      const runs = shown.slice(first).filter((k, i, all) => i === 0 || all[i - 1] !== k);
      expect(runs[0], `square runs: ${runs.join(' ')}`).toBe(0);
      expect(new Set(runs)).toEqual(new Set([0, 1, 2]));
      expect(runs.length, `square runs: ${runs.join(' ')}`).toBeGreaterThanOrEqual(4); // it looped
      const forward = runs.slice(1).filter((k, i) => k === (runs[i]! + 1) % SQUARES.length).length;
      expect(forward / (runs.length - 1), `square runs: ${runs.join(' ')}`).toBeGreaterThanOrEqual(0.75);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses a track the model does not declare, and other --input mistakes, with the usage and exit 2',
    async () => {
      const input = tmp('in');
      writeFileSync(join(input, 'a.png'), squarePng(SQUARES[0]!));
      const empty = tmp('empty');
      const out = tmp('out');

      const unknown = await runRaw(['headless', '--model', 'video-filter', '--out', out, '--input', `microphone=${input}`]);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toMatch(/no input track "microphone" \(its tracks: camera\)[\s\S]*Usage: framehost/);
      expect(unknown.stdout).toBe('');
      expect(readdirSync(out)).toEqual([]);

      // The demo model declares no track at all.
      const none = await runRaw(['headless', '--out', out, '--input', `camera=${input}`]);
      expect(none.code).toBe(2);
      expect(none.stderr).toContain('it declares none');

      const mistakes: [string[], RegExp][] = [
        [['--input', 'camera'], /expects TRACK=DIR/],
        [['--input', `=${input}`], /expects TRACK=DIR/],
        [['--input', 'camera='], /expects TRACK=DIR/],
        [['--input', `camera=${input}`, '--input', `camera=${input}`], /track "camera" twice/],
        [['--input', `camera=${join(input, 'missing')}`], /cannot list/],
        [['--input', `camera=${empty}`], /no \.png file/],
        [['--input', `camera=${input}`, '--input-fps', '0'], /--input-fps must be an integer in 1\.\.120/],
        [['--input', `camera=${input}`, '--input-fps', '2.5'], /--input-fps must be an integer/],
        [['--input-fps', '10'], /--input-fps needs --input/],
      ];
      for (const [args, message] of mistakes) {
        const r = await runRaw(['headless', '--model', 'video-filter', '--out', out, ...args]);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stderr, args.join(' ')).toMatch(message);
      }

      const help = await runRaw(['headless', '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('--input TRACK=DIR');
      expect(help.stdout).toContain('--input-fps N');
    },
    TEST_TIMEOUT_MS,
  );
});

describe('headless input helpers', () => {
  const dirs = tempDirs();
  afterEach(() => {
    dirs.removeAll();
  });

  it('lists the .png files of each directory, sorted by name; checks the tracks against the model', () => {
    const dir = dirs.make('list');
    for (const name of ['b.png', 'a.PNG', 'c.txt', '10.png', '9.png']) writeFileSync(join(dir, name), '');
    expect(parseInputSources([`camera=${dir}`])).toEqual([{ track: 'camera', dir, files: ['10.png', '9.png', 'a.PNG', 'b.png'] }]);
    expect(parseInputSources(undefined)).toEqual([]);
    const spec = { width: 4, height: 2, format: 'rgba' as const };
    expect(() => checkInputTracks([{ track: 'camera', dir, files: ['a.png'] }], { camera: spec })).not.toThrow();
    expect(() => checkInputTracks([{ track: 'depth', dir, files: ['a.png'] }], { camera: spec })).toThrow(UsageError);
  });

  it("decodes a PNG into the track's layout, and refuses a wrong size or a file that is not a PNG", () => {
    const png = new PNG({ width: 2, height: 1 });
    png.data.set([1, 2, 3, 4, 5, 6, 7, 8]);
    const bytes = PNG.sync.write(png);
    const rgba = decodeInputPng(bytes, { width: 2, height: 1, format: 'rgba' });
    expect(rgba.ok && Array.from(rgba.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const rgb = decodeInputPng(bytes, { width: 2, height: 1, format: 'rgb' });
    expect(rgb.ok && Array.from(rgb.data)).toEqual([1, 2, 3, 5, 6, 7]);
    expect(decodeInputPng(bytes, { width: 1, height: 2, format: 'rgba' })).toMatchObject({ ok: false, error: { code: 'invalid_input', message: expect.stringContaining('2×1') } });
    expect(decodeInputPng(Buffer.from('not a png'), { width: 2, height: 1, format: 'rgba' })).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
  });
});

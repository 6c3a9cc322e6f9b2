/**
 * `framehost headless --out DIR [--frames N]`: drive sessions from a script, without a network.
 *
 * Input, on stdin, one JSON object per line (lines over 64 KiB are refused with
 * `payload_too_large`, blank and other malformed lines with `bad_request`):
 *   {"type":"start"}                                          start a session
 *   {"type":"command","name":"stamp","args":{"x":10,"y":20}}  send the model a command
 *   {"type":"stop"}                                           stop the session
 *   {"type":"wait","frames":N}                                wait until N more frames are written
 * Lines are handled one at a time, in order, once the model has loaded. A line that waits holds
 * back the lines after it: `wait` until its frames are written (or the session ends), and `start`
 * until the session runs, so that a script's lines meet a running session (a stop sent while
 * the session is starting would otherwise end it before its first frame).
 *
 * Output, on stdout, one JSON object per line; `event` names it (see HeadlessEvent). Every input
 * line gets exactly one reply, `accepted`, `waited` or `error`, carrying its line number.
 * Logs go to stderr, so stdout carries nothing but these lines.
 *
 * Frames: each frame becomes DIR/frame-NNNNNN.png (RGBA or RGB, as the model emits it; a block
 * of `count` frames becomes `count` files), numbered from 1 across the whole run rather than per
 * session, so two sessions in one run never overwrite each other's files; the `frame` line says
 * which session and seq a file holds. Existing files of the same name are overwritten. Frames
 * that arrive once the run is closing (stdin's end, the cap, a signal) are not written.
 * Files are written synchronously in the frame listener: simple and in order. While a write runs
 * the main thread is busy, and the inference worker, which keeps only a few frames in flight,
 * drops (and counts, see `session.ended.dropped`) what it cannot deliver: a slow disk lowers the
 * written frame rate instead of growing memory. The demo model paces itself (option fps,
 * default 60), so it does not flood the disk.
 *
 * `--frames N` caps the frames written in the whole run; on reaching it the session is stopped
 * and the command exits once the runtime is idle, without waiting for stdin's end.
 * At stdin's end with `--frames N`, a live session runs on until N frames are written or it ends
 * by itself (so `echo '{"type":"start"}' | framehost headless --out d -n 3` writes 3 frames);
 * without `--frames`, or at SIGINT/SIGTERM, a running session is stopped, its end awaited, the runtime
 * shut down; the exit code is 0 (128 + signal number after a signal, 1 if writing a frame or
 * loading the model failed).
 *
 * Input video: `--input TRACK=DIR` (repeatable, one per track) feeds the model's input track
 * TRACK (declared in its `inputs`) from the `*.png` files of DIR, sorted by name (code unit
 * order, so number them with zeros: frame-0009.png before frame-0010.png), looping, at
 * `--input-fps N` frames a second (default 10) per track, as `runtime.publish(track, frame,
 * { owner: LOCAL_OWNER })` does for an embedding caller. Feeding begins, at the first file, each
 * time a session reaches `running` (so every session sees the same sequence), and stops when it
 * leaves `running`. Files are decoded with pngjs when their turn comes (nothing is cached: memory
 * stays flat for long sequences); pixels arrive as RGBA and are converted to the track's format.
 * A file whose size differs from the track's, or that cannot be read or decoded, is reported once
 * as an `error` line (`type: "input"`, `track`, `file`, code `invalid_input`) and skipped on
 * every later loop. `session.ended` then carries `inputs`, the frames fed in that session.
 * Command-line mistakes exit 2 with the usage, before any frame: a malformed `--input`, a track
 * named twice, a DIR that cannot be listed or holds no `.png` file, a TRACK the model does not
 * declare (checked once the model's module is imported), `--input-fps` without `--input`.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { logDestination } from '../util/log-output.ts';
import { PNG } from 'pngjs';
import { recordOptions } from '../journal/cli-options.ts';
import { errorValue, type ErrorCode, type ErrorValue, type Result } from '../errors.ts';
import { createRuntime, LOCAL_OWNER, type Runtime, type RuntimeEvents, type RuntimeFrame } from '../runtime.ts';
import { bytesPerPixel } from '../gpu/frames.ts';
import type { Phase } from '../machines/phase.ts';
import type { EndReason, ModelInfo } from '../machines/types.ts';
import type { InputTrackSpec, JsonValue, PixelFormat } from '../model/api.ts';
import { intOption, stringOption, UsageError, type ParsedCommandLine } from './args.ts';
import { checkModelArgument } from './problems.ts';
import { encodePng, frameFileName } from '../util/png.ts';

export const MAX_LINE_BYTES = 64 * 1024;
const MAX_WAIT_FRAMES = 1_000_000;
export const DEFAULT_INPUT_FPS = 10;
const MAX_INPUT_FPS = 120;

export type HeadlessRequest =
  | { readonly type: 'start' }
  | { readonly type: 'stop' }
  // Name and args are checked by the runtime against the model's schemas (unknown_command, invalid_args).
  | { readonly type: 'command'; readonly name: unknown; readonly args: unknown }
  | { readonly type: 'wait'; readonly frames: number };

export type HeadlessEvent =
  | { event: 'ready'; model: ModelInfo; commands: string[] }
  | { event: 'state'; state: Phase; from?: Phase }
  | { event: 'session.began'; sessionId: string }
  // `inputs`: frames fed from --input files in this session (present only with --input).
  | { event: 'session.ended'; sessionId: string; reason: EndReason; error?: ErrorValue; frames: number; dropped: number; inputs?: number }
  | { event: 'frame'; index: number; file: string; sessionId: string; seq: number; width: number; height: number; format: PixelFormat }
  | { event: 'message'; sessionId: string; data: JsonValue }
  | { event: 'accepted'; line: number; type: 'start'; sessionId: string }
  | { event: 'accepted'; line: number; type: 'stop' }
  | { event: 'accepted'; line: number; type: 'command'; name: string; requestId: string }
  | { event: 'waited'; line: number; frames: number; written: number }
  | { event: 'error'; line?: number; type?: string; requestId?: string; track?: string; file?: string; error: ErrorValue };

export type InputLine = { readonly line: number; readonly text: string } | { readonly line: number; readonly tooLong: true };

/**
 * Split a byte stream into lines without ever holding more than `maxBytes` of one line:
 * an over-long line is dropped as it streams in and reported once, at its end.
 */
export async function* readLines(input: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, maxBytes = MAX_LINE_BYTES): AsyncGenerator<InputLine> {
  let parts: Buffer[] = [];
  let size = 0;
  let tooLong = false;
  let line = 0;
  const take = (piece: Buffer): void => {
    if (tooLong || piece.length === 0) return;
    if (size + piece.length > maxBytes) {
      tooLong = true;
      parts = [];
      return;
    }
    parts.push(piece);
    size += piece.length;
  };
  const finish = (): InputLine => {
    line += 1;
    const result: InputLine = tooLong ? { line, tooLong: true } : { line, text: Buffer.concat(parts).toString('utf8').replace(/\r$/, '') };
    parts = [];
    size = 0;
    tooLong = false;
    return result;
  };
  for await (const chunk of input) {
    let rest = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let nl = rest.indexOf(0x0a); nl !== -1; nl = rest.indexOf(0x0a)) {
      take(rest.subarray(0, nl));
      yield finish();
      rest = rest.subarray(nl + 1);
    }
    take(rest);
  }
  if (size > 0 || tooLong) yield finish();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One input line to a request, or why it is not one. Pure. */
export function parseRequest(text: string): Result<{ request: HeadlessRequest }> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: errorValue('bad_request', `not JSON (${err instanceof Error ? err.message : String(err)})`) };
  }
  if (!isRecord(value)) return { ok: false, error: errorValue('bad_request', 'a request must be a JSON object') };
  switch (value.type) {
    case 'start':
    case 'stop':
      return { ok: true, request: { type: value.type } };
    case 'command':
      return { ok: true, request: { type: 'command', name: value.name, args: value.args ?? {} } };
    case 'wait': {
      const frames = value.frames;
      if (typeof frames !== 'number' || !Number.isInteger(frames) || frames < 1 || frames > MAX_WAIT_FRAMES) {
        return { ok: false, error: errorValue('bad_request', `wait needs frames, an integer in 1..${MAX_WAIT_FRAMES}`) };
      }
      return { ok: true, request: { type: 'wait', frames } };
    }
    default:
      return { ok: false, error: errorValue('bad_request', `unknown type ${JSON.stringify(value.type) ?? 'undefined'}; expected start, command, stop or wait`) };
  }
}

interface Waiter {
  readonly target: number;
  readonly resolve: (outcome: Result) => void;
}

/** One `--input TRACK=DIR`: the track and the PNG files of DIR, sorted by name. */
export interface InputSource {
  readonly track: string;
  readonly dir: string;
  readonly files: readonly string[];
}

/** The `--input` values, each TRACK=DIR, with DIR listed now. Throws UsageError. */
export function parseInputSources(raw: unknown): InputSource[] {
  const pairs = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  const sources: InputSource[] = [];
  for (const pair of pairs) {
    if (typeof pair !== 'string') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw new UsageError(`--input expects TRACK=DIR, got ${JSON.stringify(pair)}`);
    const track = pair.slice(0, eq);
    const dir = pair.slice(eq + 1);
    if (sources.some((s) => s.track === track)) throw new UsageError(`--input names the track ${JSON.stringify(track)} twice`);
    let files: string[];
    try {
      files = readdirSync(dir).filter((name) => /\.png$/i.test(name));
    } catch (err) {
      throw new UsageError(`--input ${track}: cannot list ${dir} (${messageOf(err)})`);
    }
    if (files.length === 0) throw new UsageError(`--input ${track}: no .png file in ${dir}`);
    sources.push({ track, dir, files: files.sort() });
  }
  return sources;
}

/** Every source names a track the model declares. Throws UsageError. */
export function checkInputTracks(sources: readonly InputSource[], declared: Readonly<Record<string, InputTrackSpec>>): void {
  const names = Object.keys(declared);
  for (const { track } of sources) {
    if (!Object.hasOwn(declared, track)) {
      throw new UsageError(`--input: the model has no input track ${JSON.stringify(track)} (${names.length > 0 ? `its tracks: ${names.join(', ')}` : 'it declares none'})`);
    }
  }
}

/** A PNG file's pixels in the track's layout, or why they do not fit it (`invalid_input`). Pure. */
export function decodeInputPng(bytes: Buffer, spec: InputTrackSpec): Result<{ data: Uint8Array }> {
  let png: { width: number; height: number; data: Buffer };
  try {
    png = PNG.sync.read(bytes); // always 8-bit RGBA, whatever the file's colour type
  } catch (err) {
    return { ok: false, error: errorValue('invalid_input', `not a PNG that can be decoded (${messageOf(err)})`) };
  }
  if (png.width !== spec.width || png.height !== spec.height) {
    return { ok: false, error: errorValue('invalid_input', `the picture is ${png.width}×${png.height}; the track takes ${spec.width}×${spec.height}`) };
  }
  const rgba = new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength);
  if (spec.format === 'rgba') return { ok: true, data: rgba };
  const pixels = spec.width * spec.height;
  const rgb = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) rgb.set(rgba.subarray(p * 4, p * 4 + 3), p * 3);
  return { ok: true, data: rgb };
}

interface FeedTrack {
  readonly source: InputSource;
  readonly spec: InputTrackSpec;
  /** Index of the next file to try. */
  next: number;
  /** Files reported once and skipped since: wrong size, unreadable, undecodable. */
  readonly skipped: Set<string>;
  /** Codes of refusals by the runtime already reported for this track. */
  readonly reported: Set<ErrorCode>;
}

/** Feeds the `--input` files into their tracks while a session runs: one timer for all tracks. */
class InputFeeder {
  private timer: NodeJS.Timeout | undefined;
  private readonly tracks: FeedTrack[];
  /** Frames accepted by the runtime in the current session, all tracks together. */
  fed = 0;

  constructor(
    private readonly runtime: Runtime,
    sources: readonly InputSource[],
    private readonly fps: number,
    private readonly print: (event: HeadlessEvent) => void,
  ) {
    const specs = runtime.capabilities.inputs;
    this.tracks = sources.map((source) => ({ source, spec: specs[source.track]!, next: 0, skipped: new Set(), reported: new Set() }));
  }

  get enabled(): boolean {
    return this.tracks.length > 0;
  }

  /** A session began: its count starts at 0. */
  sessionBegan(): void {
    this.fed = 0;
  }

  /** The session runs: feed from each track's first file, one frame now and then at the rate. */
  start(): void {
    if (this.timer || !this.enabled) return;
    for (const t of this.tracks) t.next = 0;
    this.tick();
    this.timer = setInterval(() => this.tick(), 1000 / this.fps);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    for (const t of this.tracks) this.feed(t);
  }

  /** Publish the track's next usable file; report (once) and skip those that cannot be used. */
  private feed(t: FeedTrack): void {
    const { files, dir, track } = t.source;
    for (let tries = 0; tries < files.length; tries++) {
      const file = files[t.next]!;
      t.next = (t.next + 1) % files.length;
      if (t.skipped.has(file)) continue;
      let decoded: Result<{ data: Uint8Array }>;
      try {
        decoded = decodeInputPng(readFileSync(join(dir, file)), t.spec);
      } catch (err) {
        decoded = { ok: false, error: errorValue('invalid_input', `cannot read the file (${messageOf(err)})`) };
      }
      if (!decoded.ok) {
        t.skipped.add(file);
        this.print({ event: 'error', type: 'input', track, file, error: { code: decoded.error.code, message: `${decoded.error.message}; ${file} is skipped` } });
        continue;
      }
      const r = this.runtime.publish(track, { data: decoded.data, width: t.spec.width, height: t.spec.height, format: t.spec.format }, { owner: LOCAL_OWNER });
      if (r.ok) this.fed++;
      // no_session: the session is ending between two ticks; the phase listener stops the timer.
      else if (r.error.code !== 'no_session' && !t.reported.has(r.error.code)) {
        t.reported.add(r.error.code);
        this.print({ event: 'error', type: 'input', track, file, error: r.error });
      }
      return;
    }
  }
}

interface HeadlessConfig {
  readonly out: string;
  readonly maxFrames: number | undefined;
  readonly inputs: readonly InputSource[];
  readonly inputFps: number;
}

/** The state of one headless run: the frames written so far, pending waits, the way out. */
class HeadlessRun {
  private written = 0;
  private waiters: Waiter[] = [];
  private closing = false;
  private exitCode = 0;
  private resolveFinish: () => void = () => {};
  /** Resolves when the run must end before stdin does: frame cap, failed write, signal. */
  readonly finishRequested = new Promise<void>((resolve) => (this.resolveFinish = resolve));

  private readonly feeder: InputFeeder;

  constructor(
    private readonly runtime: Runtime,
    private readonly config: HeadlessConfig,
    private readonly print: (event: HeadlessEvent) => void,
  ) {
    this.feeder = new InputFeeder(runtime, config.inputs, config.inputFps, print);
    runtime.on('phase', ({ phase, previous }) => {
      print({ event: 'state', state: phase, from: previous });
      if (phase === 'running' && !this.closing) this.feeder.start();
      else this.feeder.stop();
    });
    runtime.on('session.began', (s) => {
      this.feeder.sessionBegan();
      print({ event: 'session.began', sessionId: s.id });
    });
    runtime.on('session.finished', (end) => this.onSessionEnd(end));
    runtime.on('message', (m) => print({ event: 'message', sessionId: m.sessionId, data: m.data }));
    runtime.on('command.failed', (f) => print({ event: 'error', type: 'command', requestId: f.requestId, error: f.error }));
    runtime.on('frame', (f) => this.onFrame(f));
  }

  /** Ask the run to end (idempotent: the first code wins). */
  finish(code: number): void {
    if (this.closing) return;
    this.closing = true;
    this.exitCode = code;
    this.resolveFinish();
  }

  /** Handle input lines until stdin ends or the run is finishing. */
  async serve(lines: AsyncIterable<InputLine>): Promise<void> {
    for await (const input of lines) {
      if (this.closing) return;
      if ('tooLong' in input) {
        this.print({ event: 'error', line: input.line, error: errorValue('payload_too_large', `a line may hold at most ${MAX_LINE_BYTES} bytes`) });
        continue;
      }
      // Every line gets one reply, a blank one too: a script that sent one learns it did.
      if (input.text.trim() === '') {
        this.print({ event: 'error', line: input.line, error: errorValue('bad_request', 'blank line: expected a JSON object') });
        continue;
      }
      const parsed = parseRequest(input.text);
      if (parsed.ok) await this.handle(parsed.request, input.line);
      else this.print({ event: 'error', line: input.line, error: parsed.error });
    }
  }

  /**
   * Stdin ended. With `--frames N`, a live session runs on until the cap ends the run or the
   * session ends by itself (or a signal): stdin's end alone would stop it before its first frame.
   */
  async stdinEnded(): Promise<void> {
    if (this.config.maxFrames === undefined || this.closing) return;
    const session = this.runtime.status().session;
    if (!session) return;
    await Promise.race([this.finishRequested, this.runtime.whenSessionOver(session.id)]);
  }

  /** Stop the session if one is live, wait for its end, shut the runtime down. */
  async close(): Promise<number> {
    this.closing = true;
    this.feeder.stop();
    const session = this.runtime.status().session;
    if (session) {
      this.runtime.stop(); // refused only when it is already ending, which is what we want anyway
      await this.runtime.whenSessionOver(session.id);
    }
    await this.runtime.shutdown();
    return this.exitCode;
  }

  private async handle(request: HeadlessRequest, line: number): Promise<void> {
    switch (request.type) {
      case 'start': {
        const r = this.runtime.start();
        if (!r.ok) return this.print({ event: 'error', line, type: 'start', error: r.error });
        this.print({ event: 'accepted', line, type: 'start', sessionId: r.sessionId });
        return this.untilStarted();
      }
      case 'stop': {
        const r = this.runtime.stop();
        return this.print(r.ok ? { event: 'accepted', line, type: 'stop' } : { event: 'error', line, type: 'stop', error: r.error });
      }
      case 'command': {
        const r = this.runtime.command(request.name, request.args);
        if (!r.ok) return this.print({ event: 'error', line, type: 'command', error: r.error });
        return this.print({ event: 'accepted', line, type: 'command', name: String(request.name), requestId: r.requestId });
      }
      case 'wait': {
        const from = this.written;
        const outcome = await this.waitFrames(request.frames);
        return this.print(outcome.ok ? { event: 'waited', line, frames: this.written - from, written: this.written } : { event: 'error', line, type: 'wait', error: outcome.error });
      }
    }
  }

  /** Resolves once the runtime has left `starting`: the session runs, or it ended trying. */
  private untilStarted(): Promise<void> {
    return new Promise((resolve) => {
      if (this.runtime.phase() !== 'starting') return resolve();
      const off = this.runtime.on('phase', ({ phase }) => {
        if (phase === 'starting') return;
        off();
        resolve();
      });
    });
  }

  private waitFrames(frames: number): Promise<Result> {
    const phase = this.runtime.phase();
    if (phase !== 'starting' && phase !== 'running') return Promise.resolve({ ok: false, error: errorValue('no_session', 'nothing to wait for') });
    return new Promise((resolve) => this.waiters.push({ target: this.written + frames, resolve }));
  }

  private settleWaiters(): void {
    const done = this.waiters.filter((w) => w.target <= this.written);
    if (done.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.target > this.written);
    for (const w of done) w.resolve({ ok: true });
  }

  private onSessionEnd(end: RuntimeEvents['session.finished']): void {
    this.print({ event: 'session.ended', ...end, ...(this.feeder.enabled ? { inputs: this.feeder.fed } : {}) });
    // No more frames will come for the waits still pending.
    const pending = this.waiters;
    this.waiters = [];
    for (const w of pending) {
      w.resolve({ ok: false, error: errorValue('no_session', `the session ended (${end.reason}) ${w.target - this.written} frames short`) });
    }
  }

  private capReached(): boolean {
    return this.config.maxFrames !== undefined && this.written >= this.config.maxFrames;
  }

  private onFrame(frame: RuntimeFrame): void {
    const size = frame.width * frame.height * bytesPerPixel(frame.format);
    for (let i = 0; i < frame.count; i++) {
      if (this.capReached() || this.closing) break;
      const index = this.written + 1;
      const file = frameFileName(index);
      try {
        writeFileSync(join(this.config.out, file), encodePng(frame.data.subarray(i * size, (i + 1) * size), frame.width, frame.height, frame.format));
      } catch (err) {
        this.print({ event: 'error', error: errorValue('internal', `writing ${file}: ${messageOf(err)}`) });
        this.finish(1);
        return;
      }
      this.written = index;
      this.print({ event: 'frame', index, file, sessionId: frame.sessionId, seq: frame.seq + i, width: frame.width, height: frame.height, format: frame.format });
      this.settleWaiters();
    }
    if (this.capReached()) this.finish(0);
  }
}

function headlessConfig(cli: ParsedCommandLine): HeadlessConfig {
  const out = stringOption(cli.values, 'out');
  if (!out) throw new UsageError('--out DIR is required');
  const maxFrames = intOption(cli.values, 'frames', 1, Number.MAX_SAFE_INTEGER);
  const fps = intOption(cli.values, 'input-fps', 1, MAX_INPUT_FPS);
  const inputs = parseInputSources(cli.values.input);
  if (fps !== undefined && inputs.length === 0) throw new UsageError('--input-fps needs --input TRACK=DIR');
  return { out, maxFrames, inputs, inputFps: fps ?? DEFAULT_INPUT_FPS };
}

function jsonLines(stream: NodeJS.WritableStream): (event: HeadlessEvent) => void {
  return (event) => void stream.write(`${JSON.stringify(event)}\n`);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Create the runtime (which starts loading the model); undefined, reported, if the module cannot be imported. */
async function loadRuntime(cli: ParsedCommandLine, print: (event: HeadlessEvent) => void): Promise<Runtime | undefined> {
  // stderr: stdout carries only the JSON event lines.
  const logger = pino({ level: cli.logLevel }, logDestination(2));
  const record = recordOptions(cli.values); // a bad flag is a usage error (exit 2), not a load failure
  try {
    checkModelArgument(cli.model);
    return await createRuntime({ model: cli.model, modelOptions: cli.modelOptions, logger, ...(record ? { record } : {}) });
  } catch (err) {
    print({ event: 'error', error: errorValue('load_failed', messageOf(err)) });
    return undefined;
  }
}

const SIGNALS = { SIGINT: 2, SIGTERM: 15 } as const;

export async function runHeadless(cli: ParsedCommandLine): Promise<number> {
  const config = headlessConfig(cli);
  const print = jsonLines(process.stdout);
  try {
    mkdirSync(config.out, { recursive: true });
  } catch (err) {
    print({ event: 'error', error: errorValue('internal', `cannot create ${config.out}: ${messageOf(err)}`) });
    return 1;
  }
  const runtime = await loadRuntime(cli, print);
  if (!runtime) return 1;
  try {
    checkInputTracks(config.inputs, runtime.capabilities.inputs);
  } catch (err) {
    await runtime.shutdown();
    throw err; // main prints the usage and exits 2
  }
  const run = new HeadlessRun(runtime, config, print);
  print({ event: 'state', state: runtime.phase() });
  try {
    const model = await runtime.ready();
    print({ event: 'ready', model, commands: Object.keys(runtime.capabilities.commands) });
  } catch (err) {
    print({ event: 'error', error: errorValue('load_failed', messageOf(err)) });
    await runtime.shutdown();
    return 1;
  }
  for (const [signal, number] of Object.entries(SIGNALS)) {
    // The first signal closes gracefully; a second one means "now".
    process.once(signal, () => {
      run.finish(128 + number);
      process.once(signal, () => process.exit(128 + number));
    });
  }
  // A reader that closed stdout (`| head`) ends the run instead of crashing it with EPIPE.
  process.stdout.on('error', () => run.finish(1));
  try {
    // Either stdin ends, or the run finishes first; the reader is then abandoned (main exits).
    await Promise.race([run.serve(readLines(process.stdin)), run.finishRequested]);
    await run.stdinEnded();
  } catch (err) {
    print({ event: 'error', error: errorValue('internal', `reading stdin: ${messageOf(err)}`) });
    run.finish(1);
  }
  return run.close();
}

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
import { mkdirSync } from 'node:fs';
import { pino } from 'pino';
import { logDestination } from '../../util/log-output.ts';
import { recordOptions } from '../../journal/cli-options.ts';
import { errorValue } from '../../errors.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { intOption, stringOption, UsageError, type ParsedCommandLine } from '../args.ts';
import { checkModelArgument } from '../problems.ts';
import { jsonLines, messageOf, type HeadlessEvent } from './events.ts';
import { checkInputTracks, DEFAULT_INPUT_FPS, MAX_INPUT_FPS, parseInputSources } from './input-sources.ts';
import { readLines } from './lines.ts';
import { HeadlessRun, type HeadlessConfig } from './run.ts';

function headlessConfig(cli: ParsedCommandLine): HeadlessConfig {
  const out = stringOption(cli.values, 'out');
  if (!out) throw new UsageError('--out DIR is required');
  const maxFrames = intOption(cli.values, 'frames', 1, Number.MAX_SAFE_INTEGER);
  const fps = intOption(cli.values, 'input-fps', 1, MAX_INPUT_FPS);
  const inputs = parseInputSources(cli.values.input);
  if (fps !== undefined && inputs.length === 0) throw new UsageError('--input-fps needs --input TRACK=DIR');
  return { out, maxFrames, inputs, inputFps: fps ?? DEFAULT_INPUT_FPS };
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

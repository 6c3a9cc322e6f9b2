/**
 * `framehost replay FILE --out DIR [--force] [--video OUT.webm]`: run a journaled session again
 * (src/journal/replay.ts), write its frames as PNG, verify the recorded hashes.
 *
 * stdout: one JSON line, the report. stderr: a sentence saying what happened.
 * Exit codes: 0 every recorded hash matched; 1 a frame differs (or the video failed); 2 a bad
 * command line (an --out folder that is not empty, without --force), an unreadable journal, a
 * journal whose commands or input tracks the model lacks, or --video without ffmpeg.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { logDestination } from '../util/log-output.ts';
import { stringOption, UsageError, type ParsedCommandLine } from './args.ts';
import { readJournal } from '../journal/replay-script.ts';
import { FramehostError } from '../errors.ts';
import { replaySession, type ReplayReport } from '../journal/replay.ts';

/** Debian's ffmpeg (or any on PATH); framehost never installs or downloads it. */
function hasFfmpeg(): boolean {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function encodeVideo(out: string, video: string, fps: number): string | null {
  const r = spawnSync(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-y', '-framerate', String(fps), '-start_number', '0', '-i', join(out, 'frame-%06d.png'), '-c:v', 'libvpx-vp9', '-b:v', '0', '-crf', '30', '-pix_fmt', 'yuv420p', video],
    { encoding: 'utf8' },
  );
  if (r.error) return r.error.message;
  return r.status === 0 ? null : (r.stderr || `ffmpeg exited with ${String(r.status)}`).trim();
}

function describe(report: ReplayReport): string {
  if (report.ok) return `replay: ${report.frames} frames, all ${report.hashesChecked} recorded hashes match`;
  const d = report.firstDifference;
  if (d) return `replay: frame ${d.seq} differs from the recording (${report.hashesMatched} of ${report.hashesChecked} recorded hashes match${d.replayed === null ? '; the replay never made that frame' : ''})`;
  return `replay: ${report.frames} frames, the session made ${report.expectedFrames}`;
}

const FRAME_FILE = /^frame-\d{6,}\.png$/;

/**
 * Frames of an earlier replay left beside the new ones would read as this replay's: a folder
 * that is not empty is refused, or with --force its frame files (only those) are removed first.
 */
function prepareOut(out: string, force: boolean): void {
  let entries: string[];
  try {
    if (!statSync(out).isDirectory()) throw new UsageError(`--out ${out} is not a folder`);
    entries = readdirSync(out);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // created by the replay
    throw err;
  }
  if (entries.length === 0) return;
  if (!force) throw new UsageError(`--out ${out} is not empty (${entries.length} entries): choose a new folder, or --force to replace its frame-NNNNNN.png files`);
  for (const name of entries) if (FRAME_FILE.test(name)) rmSync(join(out, name), { force: true });
}

export async function runReplay(cli: ParsedCommandLine): Promise<number> {
  const file = cli.positional;
  if (!file) throw new UsageError('which journal? framehost replay FILE --out DIR');
  const out = stringOption(cli.values, 'out');
  if (!out) throw new UsageError('--out DIR is required');
  prepareOut(out, cli.values.force === true);
  const video = stringOption(cli.values, 'video');
  if (video && !hasFfmpeg()) {
    process.stderr.write('framehost replay: --video needs ffmpeg, which is not installed here (Debian: apt-get install ffmpeg); nothing was replayed. Run without --video for the PNG frames.\n');
    return 2;
  }
  let journal;
  try {
    journal = await readJournal(file);
  } catch (err) {
    if (err instanceof FramehostError && err.code === 'bad_journal') {
      process.stderr.write(`framehost replay: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = pino({ level: cli.logLevel }, logDestination(2));
  // The flag only: cli.model falls back to FRAMEHOST_MODEL, which is set up for serve and must not
  // silently replace the recorded model.
  const model = stringOption(cli.values, 'model');
  let report: ReplayReport;
  try {
    report = await replaySession(journal, { out, ...(model ? { model } : {}), modelOptions: cli.modelOptions, logger });
  } catch (err) {
    if (!(err instanceof FramehostError && err.code === 'bad_journal')) throw err;
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
    process.stderr.write(`framehost replay: ${err.message}\n`);
    return 2;
  }
  for (const w of report.warnings) process.stderr.write(`framehost replay: warning: ${w}\n`);
  let code = report.ok ? 0 : 1;
  let videoError: string | null = null;
  if (video && report.frames > 0) {
    const seconds = journal.end ? journal.end.ms / 1000 : 0;
    const fps = seconds > 0 ? Math.max(1, Math.min(240, Math.round(journal.expectedFrames / seconds))) : 30;
    videoError = encodeVideo(out, video, fps);
    if (videoError) code = 1;
  }
  process.stdout.write(`${JSON.stringify({ ...report, ...(video ? { video: videoError ? { error: videoError } : { path: video } } : {}) })}\n`);
  process.stderr.write(`${describe(report)}\n`);
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  return code;
}

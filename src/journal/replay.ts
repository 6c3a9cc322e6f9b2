/**
 * Run a recorded session again, headlessly, through the same model: the worker plays the
 * journal's commands and input frames at their recorded points (src/actors/loop-points.ts),
 * every frame is written as PNG, and every recorded hash is checked. The first frame whose
 * hash differs is reported: for a deterministic model it names the point where the replayed
 * model stopped behaving like the recorded one.
 */
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { createRuntime, type Runtime } from '../runtime/runtime.ts';
import type { ModelInfo } from '../machines/types.ts';
import { FramehostError } from '../errors.ts';
import { ReplayedFrames } from './replayed-frames.ts';
import { JournalError, misfit, type ParsedJournal } from './replay-script.ts';

export interface ReplayOptions {
  /** Folder for the frames (frame-NNNNNN.png, NNNNNN = the frame index from 0); none: hashes only (check). */
  readonly out?: string;
  /** Model to replay with; default: the journal's `model.source`. */
  readonly model?: string;
  /** Merged over the recorded model options. */
  readonly modelOptions?: Readonly<Record<string, unknown>>;
  readonly logger: Logger;
}

export interface FrameDifference {
  readonly seq: number;
  readonly recorded: string;
  /** null: the replay never produced this frame. */
  readonly replayed: string | null;
}

export interface ReplayReport {
  readonly ok: boolean;
  readonly model: { readonly name: string; readonly version: string };
  readonly recordedModel: { readonly name: string; readonly version: string };
  readonly frames: number;
  readonly expectedFrames: number;
  /** Recorded hashes checked against the replay, and how many matched. */
  readonly hashesChecked: number;
  readonly hashesMatched: number;
  readonly firstDifference: FrameDifference | null;
  readonly end: { readonly reason: string; readonly recordedReason: string | null };
  readonly warnings: readonly string[];
}

export async function replaySession(journal: ParsedJournal, options: ReplayOptions): Promise<ReplayReport> {
  const { header } = journal;
  const warnings = [...journal.warnings];
  if (journal.readsWithoutBytes > 0) {
    warnings.push(`${journal.readsWithoutBytes} input frame(s) were recorded as hashes only (record with --record-inputs to replay input tracks); the replay reads no frame there`);
  }
  if (journal.truncatedAt !== null) warnings.push(`the journal was cut short by its size cap at frame ${journal.truncatedAt}; only the frames before it are replayed`);
  const out = options.out;
  if (out !== undefined) mkdirSync(out, { recursive: true });

  const { runtime, model } = await loadFor(journal, options);
  if (model.name !== header.model.name || model.version !== header.model.version) {
    warnings.push(`recorded with ${header.model.name} ${header.model.version}, replayed with ${model.name} ${model.version}`);
  }

  const replayed = new ReplayedFrames(journal, out, () => queueMicrotask(() => runtime.stop()));
  const off = runtime.on('frame', (f) => replayed.frame(f));
  const started = runtime.start();
  if (!started.ok) {
    off();
    await runtime.shutdown();
    throw new FramehostError(started.error.code, `replay could not start a session: ${started.error.message}`);
  }
  const end = await runtime.whenSessionOver(started.sessionId);
  off();
  await runtime.shutdown();
  if (replayed.error) throw replayed.error;
  const { frames } = replayed;
  if (replayed.overrun) warnings.push(`the replay ran past the ${journal.expectedFrames} recorded frames and was stopped`);

  const { checked, matched, first } = compareHashes(journal, replayed.hashes);
  if (frames !== journal.expectedFrames) warnings.push(`the replay made ${frames} frames; the session made ${journal.expectedFrames}`);
  return {
    ok: first === null && frames === journal.expectedFrames,
    model: { name: model.name, version: model.version },
    recordedModel: { name: header.model.name, version: header.model.version },
    frames,
    expectedFrames: journal.expectedFrames,
    hashesChecked: checked,
    hashesMatched: matched,
    firstDifference: first,
    end: { reason: end?.reason ?? 'unknown', recordedReason: journal.end?.reason ?? null },
    warnings,
  };
}

/** A runtime that plays the journal's script, its model loaded and checked to fit the journal. */
async function loadFor(journal: ParsedJournal, options: ReplayOptions): Promise<{ runtime: Runtime; model: ModelInfo }> {
  const runtime = await createRuntime({
    model: options.model ?? journal.header.model.source,
    modelOptions: { ...journal.header.options, ...options.modelOptions },
    logger: options.logger,
    replay: journal.script,
    // Few frames in flight: the worker waits for each PNG instead of racing ahead.
    maxFramesInFlight: 2,
  });
  const model = await runtime.ready().catch(async (err: unknown) => {
    await runtime.shutdown();
    throw err;
  });
  const unfit = misfit(journal, runtime.capabilities);
  if (unfit !== null) {
    await runtime.shutdown();
    throw new JournalError(unfit);
  }
  return { runtime, model };
}

/** The journal's recorded hashes (before any cut) against the replayed ones, in frame order. */
function compareHashes(journal: ParsedJournal, replayed: ReadonlyMap<number, string>): { checked: number; matched: number; first: FrameDifference | null } {
  let checked = 0;
  let matched = 0;
  let first: FrameDifference | null = null;
  for (const seq of [...journal.hashes.keys()].sort((a, b) => a - b)) {
    if (seq >= journal.expectedFrames) continue; // after the cut of a truncated journal
    const recorded = journal.hashes.get(seq)!.hash;
    const got = replayed.get(seq) ?? null;
    checked++;
    if (got === recorded) matched++;
    else first ??= { seq, recorded, replayed: got };
  }
  return { checked, matched, first };
}

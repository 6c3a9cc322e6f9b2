/**
 * `framehost check`: the model author's conformance run, in-process on the real runtime.
 *
 * Steps, each one result line: load (timed); frames of a first session (shape, format, time to
 * first frame, rate); every command with valid arguments generated from its schema and with
 * invalid ones (each must be refused `invalid_args`); stop within the deadline; isolation.
 *
 * Isolation: session 1 is the first after a fresh load; session 2 is driven by random valid
 * commands (and noise on the input tracks); session 3's first frames must equal session 1's.
 * When they differ, a second fresh load tells the two causes apart: if its first session equals
 * session 1, state survived from one session to the next (module-level state, the usual cause);
 * if not, the model is not deterministic and should say so (`deterministic: false`), and then
 * only frame shapes and formats are compared.
 *
 * The first load records its sessions with the journal (to a temp folder, removed unless a
 * failure needs it): on a leak, narrow.ts replays session 2's journal (else session 1's) to find
 * the command the leak starts with; for a model that is not deterministic, it replays session 1
 * and finds the first frame that differs. The report names it and keeps the file.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createRuntime, type Runtime } from '../runtime.ts';
import { loadModelModule, modelUrl } from '../model/load.ts';
import type { ErasedModel, InputTrackSpec } from '../model/api.ts';
import type { CreateSessionOptions } from '../gpu/session.ts';
import type { Limits } from '../machines/types.ts';
import { DEFAULT_LIMITS } from '../machines/types.ts';
import { invalidArgs, randomArgs, validArgs } from './args.ts';
import { seededRandom } from '../util/random.ts';
import { describeDivergence, describeNarrowed, firstDivergence, narrowLeak, type Narrowed } from './narrow.ts';
import { noiseFrame, patternFrame, SessionProbe, shapeOf, type SeenFrame } from './probe.ts';

export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  readonly step: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** More lines under the result (what narrowing found, where the journal is). */
  readonly notes?: readonly string[];
}

export interface CheckOptions {
  readonly model?: string;
  readonly modelOptions?: Readonly<Record<string, unknown>>;
  readonly ort?: CreateSessionOptions;
  readonly log: Logger;
  /** The runtime's stop deadline (default 5000 ms, as `serve`). */
  readonly stopDeadlineMs?: number;
  /** How long to wait for the first frame (default 10 s). */
  readonly firstFrameTimeoutMs?: number;
  /** Window over which the frame rate is measured (default 1000 ms). */
  readonly rateWindowMs?: number;
  /** Fail below this rate (default 1 frame/s). */
  readonly minFps?: number;
  /** Random commands in the isolation run (default 30). */
  readonly randomCommands?: number;
  readonly seed?: number;
  /** Frames compared between sessions (default 3). */
  readonly compareFrames?: number;
  /** Time allowed for finding the command a leak starts with (default 20 s). */
  readonly narrowBudgetMs?: number;
}

/** Frames from a model with input tracks are compared once its input has settled. */
const INPUT_SETTLE_MS = 300;

/** Wait until the runtime is idle (after a kill, a fresh worker loads the model first). */
async function idle(runtime: Runtime, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (runtime.phase() !== 'idle') {
    if (runtime.phase() === 'failed' || runtime.phase() === 'shutdown' || performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

const ms = (n: number): string => `${Math.round(n)} ms`;
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

export async function runCheck(opts: CheckOptions, report: (r: CheckResult) => void = () => {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (step: string, status: CheckStatus, detail: string, notes?: readonly string[]): void => {
    const r = { step, status, detail, ...(notes && notes.length > 0 ? { notes } : {}) };
    results.push(r);
    report(r);
  };
  const limits: Partial<Limits> = { stopDeadlineMs: opts.stopDeadlineMs ?? DEFAULT_LIMITS.stopDeadlineMs };
  const compare = opts.compareFrames ?? 3;
  const firstFrameTimeout = opts.firstFrameTimeoutMs ?? 10_000;
  const url = modelUrl(opts.model);

  let def: ErasedModel;
  try {
    def = await loadModelModule(url);
  } catch (err) {
    add('load', 'fail', `the module did not import: ${err instanceof Error ? err.message : String(err)}`);
    return results;
  }
  const inputs = def.inputs ?? {};
  const tracked = Object.keys(inputs).length > 0;
  const deterministic = def.deterministic !== false;

  // Journals of the first load's sessions, by session id (kept only when a failure points at one).
  // A temp folder that cannot be made costs only the narrowing, never the check.
  let journalDir: string | undefined;
  try {
    journalDir = mkdtempSync(join(tmpdir(), 'framehost-check-'));
  } catch (err) {
    opts.log.warn({ err }, 'check: no temp folder for journals; a failure will not be narrowed down');
  }
  const removeJournals = (): void => {
    if (journalDir) rmSync(journalDir, { recursive: true, force: true });
  };
  let keepJournals = false;
  const journals = new Map<string, string>();
  const journalOf = async (sessionId: string): Promise<string | undefined> => {
    for (let waited = 0; journalDir && !journals.has(sessionId) && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    return journals.get(sessionId);
  };

  /** Keep the folder with only this journal in it: the others would only be confusing beside it. */
  const keep = (journal: string): void => {
    if (!journalDir) return;
    keepJournals = true;
    for (const f of readdirSync(journalDir)) if (join(journalDir, f) !== journal) rmSync(join(journalDir, f), { force: true });
  };
  const narrowOptions = {
    model: url,
    modelOptions: opts.modelOptions ?? {},
    log: opts.log,
    ...(opts.ort ? { ort: opts.ort } : {}),
    ...(opts.narrowBudgetMs !== undefined ? { budgetMs: opts.narrowBudgetMs } : {}),
  };

  const fresh = async (record = false): Promise<{ runtime: Runtime; wallMs: number; error?: string }> => {
    const t0 = performance.now();
    const runtime = await createRuntime({
      model: url,
      modelOptions: opts.modelOptions ?? {},
      logger: opts.log,
      limits,
      ...(opts.ort ? { ort: opts.ort } : {}),
      // Hashes only for input frames: the bytes of a noise track would fill the file in seconds.
      // Every frame hashed, so a replay names the exact frame that differs.
      ...(record && journalDir ? { record: { dir: journalDir, recordInputs: false, hashEvery: 1 } } : {}),
    });
    if (record) runtime.on('journal.written', (w) => void (w.failed || journals.set(w.sessionId, w.path)));
    try {
      await runtime.ready();
      return { runtime, wallMs: performance.now() - t0 };
    } catch (err) {
      return { runtime, wallMs: performance.now() - t0, error: err instanceof Error ? err.message : String(err) };
    }
  };

  /** The frames a session is compared by: its first ones, or for tracked models the first after its input settled. */
  const firstFrames = async (probe: SessionProbe): Promise<SeenFrame[]> => {
    if (!tracked) {
      await probe.waitFrames(compare, firstFrameTimeout);
      return probe.frames.slice(0, compare);
    }
    await new Promise((r) => setTimeout(r, INPUT_SETTLE_MS));
    const from = probe.frames.length;
    await probe.waitFrames(from + compare, firstFrameTimeout);
    return probe.frames.slice(from, from + compare);
  };

  const endText = (p: SessionProbe): string =>
    p.end ? `the session ended by itself (${p.end.reason}${p.end.error ? `, ${p.end.error.code}: ${p.end.error.message}` : ''})` : 'the session is running';

  // 1. Load.
  let first: Awaited<ReturnType<typeof fresh>>;
  try {
    first = await fresh(true);
  } catch (err) {
    removeJournals();
    throw err;
  }
  let runtime = first.runtime;
  try {
    if (first.error) {
      add('load', 'fail', first.error);
      return results;
    }
    const info = await runtime.ready();
    add('load', 'pass', `${info.name} ${info.version} on ${info.provider}: loaded in ${ms(info.loadMs)} (${ms(first.wallMs)} with the worker's start)`);

    // 2. Frames of a first session.
    const s1 = SessionProbe.start(runtime);
    if (!(s1 instanceof SessionProbe)) {
      add('frames', 'fail', `the session did not start: ${s1.code}: ${s1.message}`);
      return results;
    }
    s1.feed(inputs, patternFrame);
    const gotFirst = await s1.waitFrames(1, firstFrameTimeout);
    const f1 = await firstFrames(s1);
    const windowMs = opts.rateWindowMs ?? 1000;
    const before = s1.frames.length;
    const t0 = performance.now();
    if (!s1.end) await new Promise((r) => setTimeout(r, windowMs));
    const fps = ((s1.frames.length - before) * 1000) / (performance.now() - t0);
    const shapes = [...new Set(s1.frames.map(shapeOf))];
    if (!gotFirst) {
      add('frames', 'fail', s1.end ? `no frame: ${endText(s1)}` : `no frame within ${ms(firstFrameTimeout)}${tracked ? ' (input frames were being published)' : ''}`);
    } else if (s1.end) {
      add('frames', 'fail', `${plural(s1.frames.length, 'frame')}, then ${endText(s1)}`);
    } else if (shapes.length > 1) {
      add('frames', 'fail', `the frame shape changed within one session: ${shapes.slice(0, 3).join(', ')}`);
    } else if (fps < (opts.minFps ?? 1)) {
      add('frames', 'fail', `${shapes[0]}, first frame after ${ms(s1.frames[0]!.at)}, but only ${fps.toFixed(1)} frames/s (minimum ${opts.minFps ?? 1})`);
    } else {
      add('frames', 'pass', `${shapes[0]}, first frame after ${ms(s1.frames[0]!.at)}, ${fps.toFixed(1)} frames/s over ${ms(windowMs)}`);
    }

    // 3. Commands, valid and invalid, in the same session.
    for (const [name, command] of Object.entries(def.commands)) {
      if (s1.end) {
        add(`command ${name}`, 'skip', endText(s1));
        continue;
      }
      const valid = validArgs(command.args);
      const r = runtime.command(name, valid);
      const problems: string[] = [];
      if (!r.ok) problems.push(`valid arguments ${JSON.stringify(valid)} were refused: ${r.error.code}: ${r.error.message}`);
      const refused = invalidArgs(command.args).filter((c) => {
        const bad = runtime.command(name, c.args);
        if (bad.ok || bad.error.code !== 'invalid_args') problems.push(`${c.what}: expected invalid_args, got ${bad.ok ? 'accepted' : bad.error.code}`);
        return !bad.ok && bad.error.code === 'invalid_args';
      }).length;
      // The handler runs between frames: give it a few to fail in.
      await s1.waitFrames(s1.frames.length + 3, 500);
      if (r.ok && s1.commandFailures.has(r.requestId)) {
        const e = s1.commandFailures.get(r.requestId)!;
        problems.push(`the handler threw with ${JSON.stringify(valid)}: ${e.message}`);
      }
      if (s1.end) problems.push(endText(s1));
      if (problems.length > 0) add(`command ${name}`, 'fail', problems.join('; '));
      else add(`command ${name}`, 'pass', `${JSON.stringify(valid)} accepted and handled; ${refused} invalid argument sets refused with invalid_args`);
    }

    // 4. Stop within the deadline.
    const deadline = limits.stopDeadlineMs!;
    const endedBefore = s1.end !== null;
    const stopped = await s1.stop();
    if (endedBefore) {
      add('stop', 'skip', endText(s1));
    } else if (stopped.end?.reason === 'killed') {
      add('stop', 'fail', `the loop ignored stop for ${ms(deadline)} (the stop deadline) and its worker was killed: call ctx.shouldStop() in every iteration and wait with ctx.sleep() or ctx.signal, which wake at stop`);
      // A fresh worker loads the model again; the isolation run needs it.
      if (!(await idle(runtime, 120_000))) {
        add('isolation', 'skip', 'the model did not load again after its worker was killed');
        return results;
      }
    } else if (stopped.end && stopped.end.reason !== 'stopped' && stopped.end.reason !== 'returned') {
      add('stop', 'fail', `the session ended ${stopped.end.reason}${stopped.end.error ? ` (${stopped.end.error.code}: ${stopped.end.error.message})` : ''}`);
    } else {
      add('stop', 'pass', `over ${ms(stopped.ms)} after the stop request (deadline ${ms(deadline)})`);
    }

    // 5. Isolation: a session of random commands, then a session compared with session 1.
    if (f1.length < compare) {
      add('isolation', 'skip', `session 1 gave ${plural(f1.length, 'frame')}; ${compare} are needed to compare`);
      return results;
    }
    const random = seededRandom(opts.seed ?? 1);
    const s2 = SessionProbe.start(runtime);
    if (!(s2 instanceof SessionProbe)) {
      add('isolation', 'fail', `session 2 did not start: ${s2.code}: ${s2.message}`);
      return results;
    }
    s2.feed(inputs, (spec: InputTrackSpec) => noiseFrame(spec, random));
    await s2.waitFrames(1, firstFrameTimeout);
    const names = Object.keys(def.commands);
    let sent = 0;
    for (let i = 0; i < (opts.randomCommands ?? 30) && names.length > 0 && !s2.end; i++) {
      const name = names[Math.floor(random() * names.length)]!;
      if (runtime.command(name, randomArgs(def.commands[name]!.args, random)).ok) sent++;
      await s2.waitFrames(s2.frames.length + 1, 100);
    }
    await s2.waitFrames(s2.frames.length + 3, 1000);
    await s2.stop();
    await idle(runtime, 120_000); // a loop that ignores stop was killed again: wait for its fresh worker
    const s3 = SessionProbe.start(runtime);
    if (!(s3 instanceof SessionProbe)) {
      add('isolation', 'fail', `session 3 did not start: ${s3.code}: ${s3.message}`);
      return results;
    }
    s3.feed(inputs, patternFrame);
    const f3 = await firstFrames(s3);
    await s3.stop();
    const driven = `after a session of ${plural(sent, 'random command')}${tracked ? ' and noise on the input tracks' : ''}`;
    const what = tracked ? `${compare} frames after the input settled` : `first ${compare} frames`;
    const same = (a: readonly SeenFrame[], b: readonly SeenFrame[], bytes: boolean): boolean =>
      a.length === b.length && a.every((f, i) => shapeOf(f) === shapeOf(b[i]!) && (!bytes || f.hash === b[i]!.hash));

    if (f3.length < compare) {
      add('isolation', 'fail', `session 3 gave ${plural(f3.length, 'frame')} (session 1 gave ${compare}): ${endText(s3)}`);
    } else if (!deterministic) {
      if (same(f1, f3, false)) add('isolation', 'pass', `deterministic: false, so only shapes compared: session 3's ${what} match session 1's ${driven}`);
      else add('isolation', 'fail', `session 3's frames (${shapeOf(f3[0]!)}) differ in shape from session 1's (${shapeOf(f1[0]!)}) ${driven}`);
    } else if (same(f1, f3, true)) {
      add('isolation', 'pass', `session 3's ${what} equal those of the first session after a fresh load, ${driven}`);
    } else {
      // Tell a leak from a model that is not deterministic: a second fresh load.
      await runtime.shutdown();
      const second = await fresh();
      runtime = second.runtime;
      let again: SeenFrame[] = [];
      if (!second.error) {
        const s = SessionProbe.start(runtime);
        if (s instanceof SessionProbe) {
          s.feed(inputs, patternFrame);
          again = await firstFrames(s);
          await s.stop();
        }
      }
      if (same(f1, again, true)) {
        await runtime.shutdown();
        const notes: string[] = [];
        const journal = await journalOf(s2.sessionId);
        if (journal) {
          const failed =
            (session: number) =>
            (err: unknown): Narrowed => ({ kind: 'unfinished', session, of: 0, reason: err instanceof Error ? err.message : String(err), probes: 0, ms: 0 });
          let narrowed = await narrowLeak(journal, 2, narrowOptions).catch(failed(2));
          let kept = journal;
          // Session 2's commands alone do not leak: session 1's (the command step's) may.
          const s1Journal = narrowed.kind === 'not-reproduced' ? await journalOf(s1.sessionId) : undefined;
          if (s1Journal) {
            notes.push(describeNarrowed(narrowed));
            narrowed = await narrowLeak(s1Journal, 1, narrowOptions).catch(failed(1));
            if (narrowed.kind === 'command' || narrowed.kind === 'loop') kept = s1Journal;
          }
          notes.push(describeNarrowed(narrowed));
          notes.push(`session ${kept === journal ? 2 : 1}'s journal: ${kept} (framehost replay FILE --out DIR plays it through a fresh load)`);
          keep(kept);
        } else {
          notes.push('session 2 has no journal (its file could not be written), so the command the leak starts with is not known');
        }
        add(
          'isolation',
          'fail',
          `session 3's ${what} differ from those of the first session after a fresh load, ${driven}: state survived from one session to the next. ` +
            'The likely cause is module-level state (a variable outside createSessionState, or something load() returned that a session changes): keep per-session values in createSessionState',
          notes,
        );
      } else {
        await runtime.shutdown();
        const notes: string[] = [];
        const journal = await journalOf(s1.sessionId);
        if (journal) {
          notes.push(
            await firstDivergence(journal, narrowOptions).then(describeDivergence, (err: unknown) => `replaying session 1 failed: ${err instanceof Error ? err.message : String(err)}`),
          );
          notes.push(`session 1's journal: ${journal} (framehost replay FILE --out DIR plays it again)`);
          keep(journal);
        } else {
          notes.push('session 1 has no journal (its file could not be written), so the first frame that differs is not known');
        }
        add(
          'isolation',
          'fail',
          `two fresh loads gave different ${what}: the model is not deterministic. If that is by design, declare deterministic: false in defineModel (check then compares frame shapes only)`,
          notes,
        );
      }
    }
    return results;
  } finally {
    await runtime.shutdown();
    if (!keepJournals) removeJournals();
  }
}

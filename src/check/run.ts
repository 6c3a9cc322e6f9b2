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
import { loadModelModule, modelUrl } from '../model/load.ts';
import type { ErasedModel } from '../model/api.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { invalidArgs, validArgs } from './args.ts';
import { CheckRun, endText, idle, ms, plural, type CheckOptions, type CheckResult } from './check-run.ts';
import { checkIsolation, type FirstSession } from './isolation.ts';
import { CheckJournals } from './journals.ts';
import { patternFrame, SessionProbe, shapeOf } from './probe.ts';

export type { CheckOptions, CheckResult, CheckStatus } from './check-run.ts';

export async function runCheck(opts: CheckOptions, report: (r: CheckResult) => void = () => {}): Promise<CheckResult[]> {
  const url = modelUrl(opts.model);
  let def: ErasedModel;
  try {
    def = await loadModelModule(url);
  } catch (err) {
    const r: CheckResult = { step: 'load', status: 'fail', detail: `the module did not import: ${err instanceof Error ? err.message : String(err)}` };
    report(r);
    return [r];
  }
  // Journals of the first load's sessions, by session id (kept only when a failure points at one).
  const journals = CheckJournals.create(opts.log);
  const run = new CheckRun(opts, url, def, journals, report);
  let runtime: Runtime | undefined;
  try {
    runtime = await checkLoad(run);
    if (!runtime) return run.results;
    const s1 = await checkFrames(run, runtime);
    if (!s1) return run.results;
    await checkCommands(run, runtime, s1.probe);
    if (await checkStop(run, runtime, s1.probe)) await checkIsolation(run, runtime, s1);
    return run.results;
  } finally {
    await runtime?.shutdown();
    journals.close();
  }
}

/** 1. Load, timed; the runtime to check, or undefined (and the runtime shut down) when the model did not load. */
async function checkLoad(run: CheckRun): Promise<Runtime | undefined> {
  const first = await run.fresh(true);
  if (first.error) {
    run.add('load', 'fail', first.error);
    await first.runtime.shutdown();
    return undefined;
  }
  const info = await first.runtime.ready();
  run.add('load', 'pass', `${info.name} ${info.version} on ${info.provider}: loaded in ${ms(info.loadMs)} (${ms(first.wallMs)} with the worker's start)`);
  return first.runtime;
}

/** 2. Frames of a first session: shape, time to the first, rate. Undefined when it did not start. */
async function checkFrames(run: CheckRun, runtime: Runtime): Promise<FirstSession | undefined> {
  const s1 = SessionProbe.start(runtime);
  if (!(s1 instanceof SessionProbe)) {
    run.add('frames', 'fail', `the session did not start: ${s1.code}: ${s1.message}`);
    return undefined;
  }
  s1.feed(run.inputs, patternFrame);
  const gotFirst = await s1.waitFrames(1, run.firstFrameTimeout);
  const frames = await run.firstFrames(s1);
  const windowMs = run.opts.rateWindowMs ?? 1000;
  const minFps = run.opts.minFps ?? 1;
  const before = s1.frames.length;
  const t0 = performance.now();
  if (!s1.end) await new Promise((r) => setTimeout(r, windowMs));
  const fps = ((s1.frames.length - before) * 1000) / (performance.now() - t0);
  const shapes = [...new Set(s1.frames.map(shapeOf))];
  if (!gotFirst) {
    run.add('frames', 'fail', s1.end ? `no frame: ${endText(s1)}` : `no frame within ${ms(run.firstFrameTimeout)}${run.tracked ? ' (input frames were being published)' : ''}`);
  } else if (s1.end) {
    run.add('frames', 'fail', `${plural(s1.frames.length, 'frame')}, then ${endText(s1)}`);
  } else if (shapes.length > 1) {
    run.add('frames', 'fail', `the frame shape changed within one session: ${shapes.slice(0, 3).join(', ')}`);
  } else if (fps < minFps) {
    run.add('frames', 'fail', `${shapes[0]}, first frame after ${ms(s1.frames[0]!.at)}, but only ${fps.toFixed(1)} frames/s (minimum ${minFps})`);
  } else {
    run.add('frames', 'pass', `${shapes[0]}, first frame after ${ms(s1.frames[0]!.at)}, ${fps.toFixed(1)} frames/s over ${ms(windowMs)}`);
  }
  return { probe: s1, frames };
}

/** 3. Every command, with valid and with invalid arguments, in session 1. */
async function checkCommands(run: CheckRun, runtime: Runtime, s1: SessionProbe): Promise<void> {
  for (const [name, command] of Object.entries(run.def.commands)) {
    if (s1.end) {
      run.add(`command ${name}`, 'skip', endText(s1));
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
    if (problems.length > 0) run.add(`command ${name}`, 'fail', problems.join('; '));
    else run.add(`command ${name}`, 'pass', `${JSON.stringify(valid)} accepted and handled; ${refused} invalid argument sets refused with invalid_args`);
  }
}

/** 4. Stop within the deadline. False when the model did not load again after a kill (isolation is skipped). */
async function checkStop(run: CheckRun, runtime: Runtime, s1: SessionProbe): Promise<boolean> {
  const deadline = run.limits.stopDeadlineMs!;
  const endedBefore = s1.end !== null;
  const stopped = await s1.stop();
  if (endedBefore) {
    run.add('stop', 'skip', endText(s1));
  } else if (stopped.end?.reason === 'killed') {
    run.add('stop', 'fail', `the loop ignored stop for ${ms(deadline)} (the stop deadline) and its worker was killed: call ctx.shouldStop() in every iteration and wait with ctx.sleep() or ctx.signal, which wake at stop`);
    // A fresh worker loads the model again; the isolation run needs it.
    if (!(await idle(runtime, 120_000))) {
      run.add('isolation', 'skip', 'the model did not load again after its worker was killed');
      return false;
    }
  } else if (stopped.end && stopped.end.reason !== 'stopped' && stopped.end.reason !== 'returned') {
    run.add('stop', 'fail', `the session ended ${stopped.end.reason}${stopped.end.error ? ` (${stopped.end.error.code}: ${stopped.end.error.message})` : ''}`);
  } else {
    run.add('stop', 'pass', `over ${ms(stopped.ms)} after the stop request (deadline ${ms(deadline)})`);
  }
  return true;
}

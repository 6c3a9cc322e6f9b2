/**
 * The isolation step of `framehost check`: a session of random commands (and noise on the input
 * tracks), then a session whose first frames must equal session 1's. When they differ, a second
 * fresh load tells a leak (state that survived from one session to the next) from a model that
 * is not deterministic, and the journals narrow down where it starts.
 */
import type { InputTrackSpec } from '../model/api.ts';
import { seededRandom } from '../util/random.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { randomArgs } from './args.ts';
import { CheckRun, endText, idle, plural } from './check-run.ts';
import { describeDivergence, describeNarrowed, firstDivergence, narrowLeak, type Narrowed } from './narrow.ts';
import { noiseFrame, patternFrame, SessionProbe, shapeOf, type SeenFrame } from './probe.ts';

/** Session 1, as the frames step left it. */
export interface FirstSession {
  readonly probe: SessionProbe;
  readonly frames: readonly SeenFrame[];
}

/** Sessions 2 and 3 as isolation ran them. */
interface Driven {
  readonly s2: SessionProbe;
  readonly s3: SessionProbe;
  readonly f3: readonly SeenFrame[];
  /** How session 2 was driven, for the result line. */
  readonly driven: string;
  /** Which frames were compared, for the result line. */
  readonly what: string;
}

const same = (a: readonly SeenFrame[], b: readonly SeenFrame[], bytes: boolean): boolean =>
  a.length === b.length && a.every((f, i) => shapeOf(f) === shapeOf(b[i]!) && (!bytes || f.hash === b[i]!.hash));

const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Isolation, on the runtime that ran session 1. Shuts down the runtimes it loads itself. */
export async function checkIsolation(run: CheckRun, runtime: Runtime, s1: FirstSession): Promise<void> {
  if (s1.frames.length < run.compare) {
    run.add('isolation', 'skip', `session 1 gave ${plural(s1.frames.length, 'frame')}; ${run.compare} are needed to compare`);
    return;
  }
  const d = await driveSessions(run, runtime);
  if (!d) return;
  if (d.f3.length < run.compare) {
    run.add('isolation', 'fail', `session 3 gave ${plural(d.f3.length, 'frame')} (session 1 gave ${run.compare}): ${endText(d.s3)}`);
  } else if (!run.deterministic) {
    if (same(s1.frames, d.f3, false)) run.add('isolation', 'pass', `deterministic: false, so only shapes compared: session 3's ${d.what} match session 1's ${d.driven}`);
    else run.add('isolation', 'fail', `session 3's frames (${shapeOf(d.f3[0]!)}) differ in shape from session 1's (${shapeOf(s1.frames[0]!)}) ${d.driven}`);
  } else if (same(s1.frames, d.f3, true)) {
    run.add('isolation', 'pass', `session 3's ${d.what} equal those of the first session after a fresh load, ${d.driven}`);
  } else {
    await runtime.shutdown();
    if (await sameAfterFreshLoad(run, s1.frames)) await reportLeak(run, s1.probe, d);
    else await reportNondeterminism(run, s1.probe, d);
  }
}

/** Session 2 (random commands, noise) and then session 3 (the pattern again), or undefined when one did not start. */
async function driveSessions(run: CheckRun, runtime: Runtime): Promise<Driven | undefined> {
  const random = seededRandom(run.opts.seed ?? 1);
  const s2 = SessionProbe.start(runtime);
  if (!(s2 instanceof SessionProbe)) {
    run.add('isolation', 'fail', `session 2 did not start: ${s2.code}: ${s2.message}`);
    return undefined;
  }
  s2.feed(run.inputs, (spec: InputTrackSpec) => noiseFrame(spec, random));
  await s2.waitFrames(1, run.firstFrameTimeout);
  const names = Object.keys(run.def.commands);
  let sent = 0;
  for (let i = 0; i < (run.opts.randomCommands ?? 30) && names.length > 0 && !s2.end; i++) {
    const name = names[Math.floor(random() * names.length)]!;
    if (runtime.command(name, randomArgs(run.def.commands[name]!.args, random)).ok) sent++;
    await s2.waitFrames(s2.frames.length + 1, 100);
  }
  await s2.waitFrames(s2.frames.length + 3, 1000);
  await s2.stop();
  await idle(runtime, 120_000); // a loop that ignores stop was killed again: wait for its fresh worker
  const s3 = SessionProbe.start(runtime);
  if (!(s3 instanceof SessionProbe)) {
    run.add('isolation', 'fail', `session 3 did not start: ${s3.code}: ${s3.message}`);
    return undefined;
  }
  s3.feed(run.inputs, patternFrame);
  const f3 = await run.firstFrames(s3);
  await s3.stop();
  return {
    s2,
    s3,
    f3,
    driven: `after a session of ${plural(sent, 'random command')}${run.tracked ? ' and noise on the input tracks' : ''}`,
    what: run.tracked ? `${run.compare} frames after the input settled` : `first ${run.compare} frames`,
  };
}

/** Whether the first session of a second fresh load equals session 1: then state leaked, else the model is not deterministic. */
async function sameAfterFreshLoad(run: CheckRun, f1: readonly SeenFrame[]): Promise<boolean> {
  const second = await run.fresh();
  try {
    let again: SeenFrame[] = [];
    if (!second.error) {
      const s = SessionProbe.start(second.runtime);
      if (s instanceof SessionProbe) {
        s.feed(run.inputs, patternFrame);
        again = await run.firstFrames(s);
        await s.stop();
      }
    }
    return same(f1, again, true);
  } finally {
    await second.runtime.shutdown();
  }
}

/** A leak: narrow down the command it starts with (session 2's, else session 1's) and keep that journal. */
async function reportLeak(run: CheckRun, s1: SessionProbe, d: Driven): Promise<void> {
  const notes: string[] = [];
  const journal = await run.journals.of(d.s2.sessionId);
  if (journal) {
    const failed =
      (session: number) =>
      (err: unknown): Narrowed => ({ kind: 'unfinished', session, of: 0, reason: reason(err), probes: 0, ms: 0 });
    let narrowed = await narrowLeak(journal, 2, run.narrowOptions()).catch(failed(2));
    let kept = journal;
    // Session 2's commands alone do not leak: session 1's (the command step's) may.
    const s1Journal = narrowed.kind === 'not-reproduced' ? await run.journals.of(s1.sessionId) : undefined;
    if (s1Journal) {
      notes.push(describeNarrowed(narrowed));
      narrowed = await narrowLeak(s1Journal, 1, run.narrowOptions()).catch(failed(1));
      if (narrowed.kind === 'command' || narrowed.kind === 'loop') kept = s1Journal;
    }
    notes.push(describeNarrowed(narrowed));
    notes.push(`session ${kept === journal ? 2 : 1}'s journal: ${kept} (framehost replay FILE --out DIR plays it through a fresh load)`);
    run.journals.keep(kept);
  } else {
    notes.push('session 2 has no journal (its file could not be written), so the command the leak starts with is not known');
  }
  run.add(
    'isolation',
    'fail',
    `session 3's ${d.what} differ from those of the first session after a fresh load, ${d.driven}: state survived from one session to the next. ` +
      'The likely cause is module-level state (a variable outside createSessionState, or something load() returned that a session changes): keep per-session values in createSessionState',
    notes,
  );
}

/** Not deterministic: replay session 1 to find the first frame that differs, and keep its journal. */
async function reportNondeterminism(run: CheckRun, s1: SessionProbe, d: Driven): Promise<void> {
  const notes: string[] = [];
  const journal = await run.journals.of(s1.sessionId);
  if (journal) {
    notes.push(await firstDivergence(journal, run.narrowOptions()).then(describeDivergence, (err: unknown) => `replaying session 1 failed: ${reason(err)}`));
    notes.push(`session 1's journal: ${journal} (framehost replay FILE --out DIR plays it again)`);
    run.journals.keep(journal);
  } else {
    notes.push('session 1 has no journal (its file could not be written), so the first frame that differs is not known');
  }
  run.add(
    'isolation',
    'fail',
    `two fresh loads gave different ${d.what}: the model is not deterministic. If that is by design, declare deterministic: false in defineModel (check then compares frame shapes only)`,
    notes,
  );
}

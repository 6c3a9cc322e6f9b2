/**
 * When `framehost check` sees a leak, find the command it starts with, from the journal of the
 * random session (session 2; session 1's when session 2's does not reproduce it): replay a
 * prefix of its commands twice in one fresh worker (replay mode plays the same script in every
 * session). A model that keeps all session state in createSessionState makes the same frames
 * both times; a leak makes the second replay differ. Bisection over the prefix length then
 * finds a command after which the second replay differs and before which it does not.
 *
 * Replay, not a live session per probe: commands land at their recorded shouldStop() calls and
 * sleep() returns at once, so a probe takes a fresh load plus a few hundred frames' work, and
 * gives the same answer every time for a deterministic model.
 *
 * For a model whose two fresh loads differ, firstDivergence replays session 1 once and names
 * the first frame that differs from the recording and the command applied before it.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { createRuntime, type Runtime, type RuntimeFrame } from '../runtime/runtime.ts';
import type { CreateSessionOptions } from '../gpu/session.ts';
import type { ReplayScript } from '../actors/loop-points.ts';
import { hashBytes, type JournalLine } from '../journal/format.ts';
import { parseJournal } from '../journal/replay-script.ts';
import { replaySession } from '../journal/replay.ts';

export interface AppliedCommand {
  /** Position among the session's applied commands, from 1. */
  readonly index: number;
  readonly name: string;
  readonly args: Readonly<Record<string, unknown>>;
  /** Frame index (frames emitted) when the worker applied it. */
  readonly at: number;
  readonly check: number;
}

export type Narrowed = { readonly session: number } & (
  /** Replaying the first `culprit.index` commands makes the next replay differ; one fewer does not. */
  | { readonly kind: 'command'; readonly culprit: AppliedCommand; readonly of: number; readonly probes: number; readonly ms: number }
  /** Even a replay with no command changes the next one: the loop itself writes module-level state. */
  | { readonly kind: 'loop'; readonly probes: number; readonly ms: number }
  /** Replaying all of the session's commands twice gave the same frames: the leak did not reproduce this way. */
  | { readonly kind: 'not-reproduced'; readonly of: number; readonly probes: number; readonly ms: number }
  /** Out of time or a probe failed: the range it had narrowed to. */
  | { readonly kind: 'unfinished'; readonly reason: string; readonly of: number; readonly between?: readonly [AppliedCommand | null, AppliedCommand]; readonly probes: number; readonly ms: number }
);

export interface NarrowOptions {
  readonly model: string;
  readonly modelOptions: Readonly<Record<string, unknown>>;
  readonly ort?: CreateSessionOptions;
  readonly log: Logger;
  /** The whole narrowing stops after this long (default 20 s): check stays bounded. */
  readonly budgetMs?: number;
  /** One replayed session may take this long (default 5 s). */
  readonly sessionTimeoutMs?: number;
}

/** shouldStop() calls a probe runs past its last command, so the command's effect shows in frames. */
const AFTER_CHECKS = 3;

/** The commands of a journal in the order the worker applied them. */
export function appliedCommands(text: string): AppliedCommand[] {
  const out: AppliedCommand[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{"type":"command"')) continue;
    let l: JournalLine;
    try {
      l = JSON.parse(line) as JournalLine;
    } catch {
      continue; // a torn last line
    }
    if (l.type === 'command' && 'check' in l) out.push({ index: 0, name: l.name, args: l.args, at: l.at, check: l.check });
  }
  return out.sort((a, b) => a.check - b.check).map((c, i) => ({ ...c, index: i + 1 }));
}

/** The commands of one journal, replayed by prefix through fresh loads; counts its probes and their time. */
class LeakProbe {
  private probes = 0;

  constructor(
    /** When narrowing began (performance.now()): the budget counts from there. */
    private readonly t0: number,
    /** The journal's commands in the worker's form, sorted by check. */
    readonly all: ReplayScript['commands'],
    private readonly reads: ReplayScript['reads'],
    private readonly session: number,
    private readonly opts: NarrowOptions,
  ) {}

  elapsed(): number {
    return performance.now() - this.t0;
  }

  /** What every result says of the work done. */
  stamp(): { session: number; probes: number; ms: number } {
    return { session: this.session, probes: this.probes, ms: this.elapsed() };
  }

  get count(): number {
    return this.probes;
  }

  /** Whether replaying the first k commands makes the next replay's frames differ; a string: why the probe failed. */
  async leaks(k: number): Promise<boolean | string> {
    this.probes++;
    const last = k > 0 ? this.all[k - 1]!.check : 0;
    const script: ReplayScript = { commands: this.all.slice(0, k), reads: this.reads, stopCheck: last + AFTER_CHECKS };
    const runtime = await createRuntime({
      model: this.opts.model,
      modelOptions: this.opts.modelOptions,
      logger: this.opts.log,
      replay: script,
      maxFramesInFlight: 2,
      ...(this.opts.ort ? { ort: this.opts.ort } : {}),
    });
    try {
      await runtime.ready();
      const timeout = this.opts.sessionTimeoutMs ?? 5000;
      const a = await replayedHashes(runtime, timeout);
      if (typeof a === 'string') return a;
      const b = await replayedHashes(runtime, timeout);
      if (typeof b === 'string') return b;
      return a.length !== b.length || a.some((h, i) => h !== b[i]);
    } catch (err) {
      return `a probe failed: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      await runtime.shutdown();
    }
  }
}

/** One replayed session's frame hashes; a string: why it did not run to its end. */
async function replayedHashes(runtime: Runtime, sessionTimeout: number): Promise<string[] | string> {
  const hashes: string[] = [];
  const off = runtime.on('frame', (f: RuntimeFrame) => void hashes.push(hashBytes(f.data)));
  const started = runtime.start();
  if (!started.ok) {
    off();
    return `a replayed session did not start: ${started.error.code}`;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), sessionTimeout)));
  const end = await Promise.race([runtime.whenSessionOver(started.sessionId), timedOut]);
  clearTimeout(timer);
  off();
  if (end === 'timeout') return `a replayed session ran past ${sessionTimeout} ms`;
  return hashes;
}

/** `session`: which of check's sessions the journal is of (1 or 2), for the report. */
export async function narrowLeak(journalPath: string, session: number, opts: NarrowOptions): Promise<Narrowed> {
  const t0 = performance.now();
  const text = await readFile(journalPath, 'utf8');
  const journal = parseJournal(text);
  const commands = appliedCommands(text);
  const probe = new LeakProbe(t0, journal.script.commands, journal.script.reads, session, opts);
  const of = probe.all.length;
  if (of !== commands.length) return { kind: 'unfinished', of, reason: "the journal's command lines could not be read", ...probe.stamp() };
  if (of === 0) {
    const none = await probe.leaks(0);
    if (typeof none === 'string') return { kind: 'unfinished', of, reason: none, ...probe.stamp() };
    return none ? { kind: 'loop', ...probe.stamp() } : { kind: 'not-reproduced', of: 0, ...probe.stamp() };
  }
  const range = await bisect(probe, commands, opts.budgetMs ?? 20_000);
  if (!Array.isArray(range)) return range;
  const [lo, hi] = range;
  if (hi === of) {
    const full = await probe.leaks(of);
    if (typeof full === 'string') return { kind: 'unfinished', of, reason: full, ...probe.stamp() };
    if (!full) return { kind: 'not-reproduced', of, ...probe.stamp() };
  }
  if (lo === 0) {
    const none = await probe.leaks(0);
    if (typeof none === 'string') return { kind: 'unfinished', of, reason: none, ...probe.stamp() };
    if (none) return { kind: 'loop', ...probe.stamp() };
  }
  return { kind: 'command', culprit: commands[hi - 1]!, of, ...probe.stamp() };
}

/**
 * Bisection over the prefix length, to [lo, hi] one apart; or an unfinished result (out of
 * budget, a probe failed). Invariant: replaying `lo` commands does not leak, replaying `hi`
 * does. Both ends are first assumed (the live run leaked; no command, no leak) and probed by
 * narrowLeak only if bisection ends at one of them: a culprit in the middle costs
 * log2(commands) probes, not two more.
 */
async function bisect(probe: LeakProbe, commands: readonly AppliedCommand[], budget: number): Promise<[number, number] | Narrowed> {
  let lo = 0;
  let hi = probe.all.length;
  while (hi - lo > 1) {
    const between = [commands[lo - 1] ?? null, commands[hi - 1]!] as const;
    if (probe.elapsed() > budget) return { kind: 'unfinished', of: probe.all.length, reason: `out of time after ${probe.count} probes`, between, ...probe.stamp() };
    const mid = Math.floor((lo + hi) / 2);
    const r = await probe.leaks(mid);
    if (typeof r === 'string') return { kind: 'unfinished', of: probe.all.length, reason: r, between, ...probe.stamp() };
    if (r) hi = mid;
    else lo = mid;
  }
  return [lo, hi];
}

const ORDINAL = (n: number): string => {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
};

export function describeCommand(c: AppliedCommand, of: number, session: number): string {
  return `"${c.name}" ${JSON.stringify(c.args)} (the ${ORDINAL(c.index)} of session ${session}'s ${of} commands, applied at frame ${c.at})`;
}

/** The report line for a narrowing result. */
export function describeNarrowed(n: Narrowed): string {
  const took = `${n.probes} ${n.probes === 1 ? 'probe' : 'probes'}, ${Math.round(n.ms)} ms`;
  switch (n.kind) {
    case 'command':
      return `the leak starts with command ${describeCommand(n.culprit, n.of, n.session)}: ${n.culprit.index === 1 ? 'a session replayed with no command' : 'replaying the commands before it'} twice in one worker gives the same frames, replaying it too does not (${took})`;
    case 'loop':
      return `the leak needs no command: a replayed session with no command already changes the next one, so the loop (or createSessionState) writes module-level state (${took})`;
    case 'not-reproduced':
      return `replaying session ${n.session}'s ${n.of} commands twice in one worker gave the same frames both times: the leak depends on something replay does not repeat (timing, input frames${n.session === 2 ? ", or session 1's commands" : ''}) (${took})`;
    case 'unfinished':
      return `narrowing stopped: ${n.reason}${n.between ? `; the leak starts after ${n.between[0] ? `command ${describeCommand(n.between[0], n.of, n.session)}` : 'the start'} and by command ${describeCommand(n.between[1], n.of, n.session)}` : ''} (${took})`;
  }
}

export interface Divergence {
  /** The first recorded frame the replay made differently (null: every recorded hash matched). */
  readonly frame: number | null;
  readonly hashesChecked: number;
  /** The last command applied at or before that frame; null: none was. */
  readonly after: AppliedCommand | null;
  readonly of: number;
  readonly ms: number;
}

/**
 * For a model whose two fresh loads differ: replay session 1 (the first after a fresh load)
 * through another fresh load and find the first frame that differs from the recording, and the
 * last command applied before it. Frame 0 with no command before it: the loop varies by itself.
 */
export async function firstDivergence(journalPath: string, opts: NarrowOptions): Promise<Divergence> {
  const t0 = performance.now();
  const text = await readFile(journalPath, 'utf8');
  const commands = appliedCommands(text);
  const report = await replaySession(parseJournal(text), { model: opts.model, modelOptions: opts.modelOptions, logger: opts.log });
  const frame = report.firstDifference?.seq ?? null;
  const after = frame === null ? null : (commands.filter((c) => c.at <= frame).at(-1) ?? null);
  return { frame, hashesChecked: report.hashesChecked, after, of: commands.length, ms: performance.now() - t0 };
}

export function describeDivergence(d: Divergence): string {
  const took = `${Math.round(d.ms)} ms`;
  if (d.frame === null) return `replaying session 1 through a fresh load matched all ${d.hashesChecked} recorded frames: the difference lies in timing, which replay does not repeat (${took})`;
  const where = `replaying session 1 through a fresh load, frame ${d.frame} is the first that differs from the recording`;
  if (!d.after) return `${where}, before any command was applied: the loop's output varies by itself (Math.random, the clock, uninitialised memory, a nondeterministic kernel) (${took})`;
  return `${where}; the last command applied before it: ${describeCommand(d.after, d.of, 1)} (${took})`;
}

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
import { createRuntime, type RuntimeFrame } from '../runtime.ts';
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

/** `session`: which of check's sessions the journal is of (1 or 2), for the report. */
export async function narrowLeak(journalPath: string, session: number, opts: NarrowOptions): Promise<Narrowed> {
  const t0 = performance.now();
  const budget = opts.budgetMs ?? 20_000;
  const sessionTimeout = opts.sessionTimeoutMs ?? 5000;
  const text = await readFile(journalPath, 'utf8');
  const journal = parseJournal(text);
  const commands = appliedCommands(text);
  const all = journal.script.commands; // the same commands, in the worker's form (sorted by check)
  let probes = 0;
  const elapsed = (): number => performance.now() - t0;
  const stamp = (): { session: number; probes: number; ms: number } => ({ session, probes, ms: elapsed() });
  if (all.length !== commands.length) return { kind: 'unfinished', of: all.length, reason: "the journal's command lines could not be read", ...stamp() };

  /** Whether replaying the first k commands makes the next replay's frames differ; a string: why the probe failed. */
  const leaks = async (k: number): Promise<boolean | string> => {
    probes++;
    const last = k > 0 ? all[k - 1]!.check : 0;
    const script: ReplayScript = { commands: all.slice(0, k), reads: journal.script.reads, stopCheck: last + AFTER_CHECKS };
    const runtime = await createRuntime({
      model: opts.model,
      modelOptions: opts.modelOptions,
      logger: opts.log,
      replay: script,
      maxFramesInFlight: 2,
      ...(opts.ort ? { ort: opts.ort } : {}),
    });
    try {
      await runtime.ready();
      const one = async (): Promise<string[] | string> => {
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
      };
      const a = await one();
      if (typeof a === 'string') return a;
      const b = await one();
      if (typeof b === 'string') return b;
      return a.length !== b.length || a.some((h, i) => h !== b[i]);
    } catch (err) {
      return `a probe failed: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      await runtime.shutdown();
    }
  };

  // Invariant: replaying `lo` commands does not leak, replaying `hi` does. Both ends are first
  // assumed (the live run leaked; no command, no leak) and probed only if bisection ends at
  // one of them: a culprit in the middle costs log2(commands) probes, not two more.
  let lo = 0;
  let hi = all.length;
  if (hi === 0) {
    const none = await leaks(0);
    if (typeof none === 'string') return { kind: 'unfinished', of: all.length, reason: none, ...stamp() };
    return none ? { kind: 'loop', ...stamp() } : { kind: 'not-reproduced', of: 0, ...stamp() };
  }
  while (hi - lo > 1) {
    if (elapsed() > budget) return { kind: 'unfinished', of: all.length, reason: `out of time after ${probes} probes`, between: [commands[lo - 1] ?? null, commands[hi - 1]!], ...stamp() };
    const mid = Math.floor((lo + hi) / 2);
    const r = await leaks(mid);
    if (typeof r === 'string') return { kind: 'unfinished', of: all.length, reason: r, between: [commands[lo - 1] ?? null, commands[hi - 1]!], ...stamp() };
    if (r) hi = mid;
    else lo = mid;
  }
  if (hi === all.length) {
    const full = await leaks(all.length);
    if (typeof full === 'string') return { kind: 'unfinished', of: all.length, reason: full, ...stamp() };
    if (!full) return { kind: 'not-reproduced', of: all.length, ...stamp() };
  }
  if (lo === 0) {
    const none = await leaks(0);
    if (typeof none === 'string') return { kind: 'unfinished', of: all.length, reason: none, ...stamp() };
    if (none) return { kind: 'loop', ...stamp() };
  }
  return { kind: 'command', culprit: commands[hi - 1]!, of: all.length, ...stamp() };
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

/**
 * Soak: many sessions back to back through the runtime API, on one load of the scripted model
 * in `state-frames` mode (its frames show the session's state: the ONNX counter and the notes).
 * Each session: start, wait for 2 frames (leaving a note after the first), stop, wait until idle.
 *
 * Isolation at scale: every session's first frame is byte-identical to the first session's.
 * No growth: between session 50 and the last, the process's RSS (after a full GC, not counting
 * the reserve V8 keeps beyond the main heap's live size) grows less than 30 MB and the main
 * thread's live heap less than 3 MB, and the active resources by type
 * (timers, message ports, handles), the chart's observers and emitted-event listeners stay the same.
 *
 * CI runs a few hundred sessions; `npm run soak` runs 3000 (`SOAK_SESSIONS`).
 *
 * Why not the demo world: its ONNX Runtime allocations warm up for ~2500 sessions (RSS +50 MB
 * in steps, then flat; the JavaScript heaps of both threads stay flat), which would hide a small
 * leak of framehost's own behind the allocator. The scripted model runs the same lifecycle (chart,
 * worker, ONNX session, frames, commands) with a one-element graph.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, expect, it } from 'vitest';
import type { Runtime } from '../src/runtime/runtime.ts';
import { SCRIPTED_MODEL, startRuntime } from './helpers/runtime.ts';

const SESSIONS = Math.max(60, Number(process.env.SOAK_SESSIONS ?? 500));
const MARK = 50;

// A full collection before each memory reading (vitest starts no worker with --expose-gc).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let rt: Runtime | undefined;
afterAll(async () => {
  await rt?.shutdown();
});

interface Reading {
  rss: number;
  /** The main thread's live JavaScript heap after a full GC: a leak there shows to the byte. */
  heapUsed: number;
  /** What V8 keeps reserved for the main thread's heap beyond its live size. */
  heapReserve: number;
  resources: Record<string, number>;
  observers: number;
  eventListeners: Record<string, number>;
}

/** What XState keeps per actor; private in its typings, read here to catch leaked subscriptions. */
interface ActorInternals {
  observers: Set<unknown>;
  eventListeners: Map<string, Set<unknown>>;
}

async function reading(runtime: Runtime): Promise<Reading> {
  await new Promise((r) => setTimeout(r, 20)); // let closed handles and finished timers go
  gc();
  gc();
  const resources: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) resources[type] = (resources[type] ?? 0) + 1;
  const actor = runtime.actor as unknown as ActorInternals;
  const eventListeners: Record<string, number> = {};
  for (const [type, set] of actor.eventListeners) eventListeners[type] = set.size;
  const { rss, heapUsed, heapTotal } = process.memoryUsage();
  return { rss, heapUsed, heapReserve: heapTotal - heapUsed, resources, observers: actor.observers.size, eventListeners };
}

it(`serves ${SESSIONS} sessions back to back: identical first frames, no growth in memory, resources or listeners`, async () => {
  rt = await startRuntime({ model: SCRIPTED_MODEL, modelOptions: { mode: 'state-frames' } });
  const runtime = rt;
  await runtime.ready();
  let lastSecondFrame: Buffer | null = null;
  const problems: string[] = [];

  let baseline: Buffer | null = null;
  let atMark: Reading | null = null;
  const t0 = Date.now();

  for (let i = 0; i < SESSIONS; i++) {
    let first: Buffer | null = null;
    let seen = 0;
    let sessionId = '';
    let done!: () => void;
    const twoFrames = new Promise<void>((resolve) => (done = resolve));
    const off = runtime.on('frame', (f) => {
      if (f.sessionId !== sessionId) return;
      seen++;
      if (seen === 1) {
        first = Buffer.from(f.data);
        // This user leaves something in the session's state; the next user must not see it.
        if (!runtime.command('note', { text: `user ${i} was here` }).ok) problems.push(`session ${i}: note refused`);
      }
      if (seen === 2) {
        lastSecondFrame = Buffer.from(f.data);
        done();
      }
    });
    const s = runtime.start();
    if (!s.ok) throw new Error(`session ${i}: start refused with ${s.error.code}`);
    sessionId = s.sessionId;
    const timer = setTimeout(() => done(), 10_000);
    await twoFrames;
    clearTimeout(timer);
    off();
    // Plain checks in the loop (an expect() per session would itself allocate in the test runner).
    if (seen < 2) throw new Error(`session ${i}: ${seen} frames in 10 s`);
    if (!runtime.stop().ok) throw new Error(`session ${i}: stop refused`);
    const end = await runtime.whenSessionOver(sessionId);
    if (end?.sessionId !== sessionId || end.reason !== 'stopped') throw new Error(`session ${i}: ended ${JSON.stringify(end)}`);
    if (runtime.phase() !== 'idle') throw new Error(`session ${i}: phase ${runtime.phase()} after the session was over`);
    if (problems.length > 0) throw new Error(problems.join('\n'));

    baseline ??= first;
    if (!first || !baseline || !(first as Buffer).equals(baseline)) {
      throw new Error(`session ${i}: its first frame differs from the first session's (state leaked between sessions)`);
    }
    if (i + 1 === MARK) atMark = await reading(runtime);
  }
  // The frames do show the state: a later frame of a session (counter advanced) differs from its first.
  expect(lastSecondFrame).not.toBeNull();
  expect(lastSecondFrame!.equals(baseline!)).toBe(false);
  const last = await reading(runtime);
  const seconds = (Date.now() - t0) / 1000;
  const mb = (b: number): string => (b / 2 ** 20).toFixed(1);
  const growth = last.rss - atMark!.rss;
  // V8 sizes the main thread's heap to the allocation rate (it grows ~15 MB reserved over 3000
  // sessions here while the live heap stays flat): the bound counts the main heap by its live size.
  const retainedGrowth = growth - (last.heapReserve - atMark!.heapReserve);
  console.log(
    `[soak] ${SESSIONS} sessions in ${seconds.toFixed(1)} s: RSS at session ${MARK} ${mb(atMark!.rss)} MB, at the end ${mb(last.rss)} MB, growth ${mb(growth)} MB (${mb(retainedGrowth)} MB without V8's reserve); main heap after GC ${mb(atMark!.heapUsed)} → ${mb(last.heapUsed)} MB; ` +
      `active resources ${JSON.stringify(last.resources)} (at ${MARK}: ${JSON.stringify(atMark!.resources)}); chart observers ${last.observers}, event listeners ${JSON.stringify(last.eventListeners)}`,
  );

  const status = runtime.status();
  expect(status.sessionsStarted).toBe(SESSIONS);
  expect(status.workerStarts).toBe(1);
  expect(retainedGrowth).toBeLessThan(30 * 2 ** 20);
  expect(last.heapUsed - atMark!.heapUsed).toBeLessThan(3 * 2 ** 20);
  expect(last.resources).toEqual(atMark!.resources);
  expect(last.observers).toBe(atMark!.observers);
  expect(last.eventListeners).toEqual(atMark!.eventListeners);
}, 600_000);

/**
 * Memory over many short sessions (start, one frame, stop, cleaned up), and where it goes.
 *
 * RSS of a process whose worker churns 256-512 KiB buffers moves ±20 MB from one moment to the
 * next (garbage not yet collected in the worker, allocator caches). So each figure is the median
 * of samples taken after every session of a window of 21 sessions, the main thread's garbage
 * collected (with --expose-gc) every few sessions: "after 10" is sessions 10-30, "after N" the
 * last 21. Windows are taken at 10, 100, 1,000 and every further 1,000, so a run of 10,000
 * (BENCH_MEMORY_SESSIONS=10000 npm run bench -- --memory-only) shows whether RSS levels off.
 *
 * Where it goes, in each window: the main thread's heap, its external memory (ArrayBuffers
 * included), the worker's heap and external memory (its heartbeat, `worker.memory`), and the
 * rest of RSS outside both isolates (native: ONNX Runtime, libuv, the allocator's arenas and
 * what it keeps of freed memory). Setting MALLOC_ARENA_MAX in the environment tells whether the
 * allocator's arenas are the rest.
 */
import type { Runtime } from '../src/runtime/runtime.ts';
import type { WorkerMemory } from '../src/actors/inference.actor.ts';
import { median, r2, sleep } from './stats.ts';

interface Sample {
  readonly rss: number;
  readonly mainHeap: number;
  readonly mainExternal: number;
  readonly mainArrayBuffers: number;
  readonly workerHeap: number;
  readonly workerExternal: number;
  /** RSS outside both isolates' heaps and external memory. */
  readonly native: number;
}

export interface MemoryWindow {
  readonly after: number;
  readonly rss_mb: number;
  readonly main_heap_mb: number;
  readonly main_external_mb: number;
  readonly main_array_buffers_mb: number;
  readonly worker_heap_mb: number;
  readonly worker_external_mb: number;
  readonly native_mb: number;
}

export interface MemoryResult {
  readonly sessions: number;
  readonly malloc_arena_max: string | null;
  readonly seconds: number;
  readonly windows: readonly MemoryWindow[];
  /** RSS after N against after 10, per 1,000 sessions (includes the allocator's warm-up). */
  readonly rss_growth_mb_1000_sessions: number;
  /** After N against after 1,000 (or 100 in a short run), per 1,000 sessions: the steady state. */
  readonly rss_growth_mb_per_1000_steady: number;
  readonly heap_growth_mb_1000_sessions: number;
}

const WINDOW = 21;
const mb = (x: number): number => r2(x / (1024 * 1024));

/** The sessions after which a window starts: 10, 100, 1,000, 2,000, … and the last 21. */
export function windowStarts(sessions: number): number[] {
  const starts = [10, 100, ...Array.from({ length: Math.floor(sessions / 1000) }, (_, k) => (k + 1) * 1000)].filter((s) => s + WINDOW - 1 <= sessions);
  const last = sessions - WINDOW + 1;
  return [...new Set([...starts.filter((s) => s < last), last])];
}

/** The latest worker heartbeat's figures, zero until the first. */
class WorkerMemoryWatch {
  latest: WorkerMemory = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
  readonly off: () => void;
  constructor(rt: Runtime) {
    this.off = rt.on('worker.memory', (m) => (this.latest = m));
  }
}

function sample(worker: WorkerMemory): Sample {
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    mainHeap: m.heapUsed,
    mainExternal: m.external,
    mainArrayBuffers: m.arrayBuffers,
    workerHeap: worker.heapUsed,
    workerExternal: worker.external,
    native: m.rss - m.heapTotal - m.external - worker.heapTotal - worker.external,
  };
}

function windowAt(samples: readonly Sample[], from: number): MemoryWindow {
  const w = samples.slice(from, from + WINDOW);
  const med = (pick: (s: Sample) => number): number => mb(median(w.map(pick)));
  return {
    after: from,
    rss_mb: med((s) => s.rss),
    main_heap_mb: med((s) => s.mainHeap),
    main_external_mb: med((s) => s.mainExternal),
    main_array_buffers_mb: med((s) => s.mainArrayBuffers),
    worker_heap_mb: med((s) => s.workerHeap),
    worker_external_mb: med((s) => s.workerExternal),
    native_mb: med((s) => s.native),
  };
}

/** `sessions` short sessions on `rt` (ready, idle), sampled after each. */
export async function memoryOverSessions(rt: Runtime, sessions: number): Promise<MemoryResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const watch = new WorkerMemoryWatch(rt);
  // The worker's figures come with its heartbeat (about once a second): have one before sampling.
  while (watch.latest.heapTotal === 0) await sleep(50);
  const samples: Sample[] = [];
  const started = Date.now();
  for (let i = 1; i <= sessions; i++) {
    rt.start();
    while ((rt.status().session?.frames ?? 0) < 1) await sleep(0.2);
    rt.stop();
    while (rt.phase() !== 'idle') await sleep(1);
    if (i % 5 === 0) gc?.();
    samples[i] = sample(watch.latest);
    if (i % 1000 === 0) process.stderr.write(`    ${i} sessions: RSS ${mb(samples[i]!.rss)} MB\n`);
  }
  watch.off();
  const windows = windowStarts(sessions).map((from) => windowAt(samples, from));
  const first = windows[0]!;
  const last = windows.at(-1)!;
  const steady = windows.findLast((w) => w.after <= 1000 && w !== last) ?? windows.find((w) => w.after === 100) ?? first;
  const per1000 = (a: MemoryWindow, b: MemoryWindow, key: 'rss_mb' | 'main_heap_mb'): number => (b.after > a.after ? r2(((b[key] - a[key]) * 1000) / (b.after - a.after)) : 0);
  return {
    sessions,
    malloc_arena_max: process.env.MALLOC_ARENA_MAX ?? null,
    seconds: Math.round((Date.now() - started) / 1000),
    windows,
    rss_growth_mb_1000_sessions: per1000(first, last, 'rss_mb'),
    rss_growth_mb_per_1000_steady: per1000(steady, last, 'rss_mb'),
    heap_growth_mb_1000_sessions: per1000(first, last, 'main_heap_mb'),
  };
}

export function memoryMarkdown(mem: MemoryResult): string {
  const rows = mem.windows.map((w) => `| ${w.after} | ${w.rss_mb} | ${w.main_heap_mb} | ${w.main_external_mb} (${w.main_array_buffers_mb}) | ${w.worker_heap_mb} | ${w.worker_external_mb} | ${w.native_mb} |`);
  return `| memory over ${mem.sessions} sessions (MALLOC_ARENA_MAX ${mem.malloc_arena_max ?? 'unset'}, ${mem.seconds} s): MB after | RSS | main heap | main external (ArrayBuffers) | worker heap | worker external | native rest |
|---|---|---|---|---|---|---|
${rows.join('\n')}

RSS growth per 1,000 sessions: ${mem.rss_growth_mb_1000_sessions} MB from 10, ${mem.rss_growth_mb_per_1000_steady} MB in the steady state; main heap ${mem.heap_growth_mb_1000_sessions} MB.`;
}

/**
 * RSS of the server over many WebRTC joins: `npm run bench -- --joins-only` (BENCH_JOINS,
 * default 2,000; 300 with --quick). The server runs the demo at 256², paced at 60 fps, with its
 * owner's session running (a Socket.IO client in this process); viewers join and leave one at a
 * time from another process (bench/joiner-process.ts), so only the server's memory is in the
 * figures. After each join the server has no peer left (`framehost_webrtc_peers` 0) before the
 * next; the main heap is garbage collected every 25 joins (--expose-gc). RSS is the median of
 * the 25 joins up to each checkpoint (100, 200, 500, then every 500), and the slope is fitted
 * (least squares) over the second half, after libwebrtc's warm-up (its threads and pools).
 */
import { pino } from 'pino';
import { createRuntime } from '../src/runtime/runtime.ts';
import { listen } from '../src/transport/server.ts';
import { FramehostClient } from '../src/client/client.ts';
import { ChildRpc } from './child-rpc.ts';
import type { JoinerRequest } from './joiner-process.ts';
import { median, r2, sleep } from './stats.ts';

export interface JoinsResult {
  readonly joins: number;
  /** Joins that did not get to a frame (still joined and left). */
  readonly failed: number;
  readonly seconds: number;
  readonly checkpoints: readonly { readonly joins: number; readonly rss_mb: number; readonly heap_mb: number; readonly handles: number }[];
  /** Least-squares slope of RSS over the second half of the joins. */
  readonly rss_kb_per_join_second_half: number;
  readonly rss_mb_growth_second_half: number;
}

const mb = (x: number): number => r2(x / 2 ** 20);

/** Least-squares slope of ys over xs. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function peersOpen(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^framehost_webrtc_peers (\d+)$/m.exec(text)?.[1] ?? NaN);
}

export async function runJoinsBench(joins: number): Promise<JoinsResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const rt = await createRuntime({ modelOptions: { size: 256, fps: 60 }, logger: pino({ level: 'warn' }) });
  await rt.ready();
  // Memory, not latency, is measured: on a busy machine an answer may take longer than the default 5 s.
  const server = await listen(rt, { host: '127.0.0.1', port: 0, webrtc: { answerTimeoutMs: 60_000, connectTimeoutMs: 60_000 } });
  const owner = await FramehostClient.connect(server.url, { reconnection: false });
  await owner.start({ encoding: 'raw' });
  const joiner = new ChildRpc<JoinerRequest>(new URL('./joiner-process.ts', import.meta.url));
  const rss: number[] = [];
  const heap: number[] = [];
  const handles: number[] = [];
  const started = Date.now();
  let failed = 0;
  for (let i = 1; i <= joins; i++) {
    // A join that fails (refused, no frame in time) is counted and its peer still awaited gone.
    await joiner.ask({ type: 'join', url: server.url, closePeer: i % 2 === 0 }).catch(() => failed++);
    while ((await peersOpen(server.url)) !== 0) await sleep(5);
    if (i % 25 === 0) gc?.();
    const m = process.memoryUsage();
    rss[i] = m.rss;
    heap[i] = m.heapUsed;
    handles[i] = process.getActiveResourcesInfo().length;
    if (i % 500 === 0) process.stderr.write(`    ${i} joins: RSS ${mb(m.rss)} MB\n`);
  }
  await joiner.close();
  owner.close();
  await server.close();
  await rt.shutdown();
  const at = [100, 200, ...Array.from({ length: Math.floor(joins / 500) }, (_, k) => (k + 1) * 500)].filter((j) => j <= joins);
  const checkpoints = [...new Set(at)].map((j) => ({ joins: j, rss_mb: mb(median(rss.slice(j - 24, j + 1))), heap_mb: mb(median(heap.slice(j - 24, j + 1))), handles: handles[j]! }));
  const half = Math.floor(joins / 2);
  const xs = Array.from({ length: joins - half }, (_, k) => half + 1 + k);
  const perJoin = slope(xs, xs.map((i) => rss[i]!));
  return {
    joins,
    failed,
    seconds: Math.round((Date.now() - started) / 1000),
    checkpoints,
    rss_kb_per_join_second_half: r2(perJoin / 1024),
    rss_mb_growth_second_half: mb(perJoin * (joins - half)),
  };
}

export function joinsMarkdown(r: JoinsResult): string {
  const rows = r.checkpoints.map((c) => `| ${c.joins} | ${c.rss_mb} | ${c.heap_mb} | ${c.handles} |`);
  return `| WebRTC joins (${r.joins}, ${r.failed} without a frame, ${r.seconds} s): after | server RSS MB | main heap MB | active handles |
|---|---|---|---|
${rows.join('\n')}

Server RSS slope over joins ${Math.floor(r.joins / 2) + 1}-${r.joins}: ${r.rss_kb_per_join_second_half} KB a join (${r.rss_mb_growth_second_half} MB over that half).`;
}

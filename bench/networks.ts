/**
 * Delivered ÷ bare for one workload on one provider, in paired phases: a bare phase (the
 * workload's loop alone on a worker thread), then a delivered phase (the same model served by
 * framehost, frames received raw by a socket.io-client in another process; optionally then
 * one WebRTC viewer, bench/webrtc-client.ts), alternating; the ratio per adjacent pair, the
 * median over rounds. Both hold their session at once, with the
 * same provider and thread settings; only one runs at a time.
 */
import type { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { createRuntime } from '../src/runtime/runtime.ts';
import { listen } from '../src/transport/server.ts';
import { startWorker } from '../src/util/worker.ts';
import type { OutputCheck } from '../src/gpu/compare.ts';
import type { ProviderChoice } from '../src/gpu/providers.ts';
import type { ChildRpc } from './child-rpc.ts';
import type { ClientRequest } from './client-process.ts';
import type { RtcClientRequest, RtcWindow } from './webrtc-client.ts';
import { median, r2, r3, sleep } from './stats.ts';
import { served, type WorkloadName } from './workloads.ts';
import type { WorkloadWorkerData } from './workload-worker.ts';

type Reply =
  | { type: 'ready'; provider: string; adapter: string; check: OutputCheck | null; first: Uint8Array }
  | { type: 'window'; frames: number; ms: number }
  | { type: 'failed'; error: string };

/** The bare loop's worker thread, asked for one timed window at a time. */
export class BareWorker {
  private readonly worker: Worker;
  readonly ready: Promise<Extract<Reply, { type: 'ready' }>>;
  constructor(data: WorkloadWorkerData) {
    this.worker = startWorker(new URL('./workload-worker.ts', import.meta.url), { workerData: data });
    this.ready = this.reply().then((r) => {
      if (r.type !== 'ready') throw new Error(r.type === 'failed' ? r.error : 'unexpected reply');
      return r;
    });
  }
  private reply(): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.worker.once('message', resolve);
      this.worker.once('error', reject);
    });
  }
  async fps(ms: number): Promise<number> {
    await this.ready;
    const reply = this.reply();
    this.worker.postMessage({ ms });
    const r = await reply;
    if (r.type !== 'window') throw new Error(r.type === 'failed' ? r.error : 'unexpected reply');
    return (r.frames * 1000) / r.ms;
  }
  close(): Promise<number> {
    return this.worker.terminate();
  }
}

export interface PairedOptions {
  readonly provider: ProviderChoice;
  readonly threads?: number;
  readonly phaseMs: number;
  readonly rounds: number;
  readonly ocrPath?: string;
  /** The WebRTC viewer process: adds a WebRTC phase to every round. */
  readonly webrtc?: ChildRpc<RtcClientRequest>;
}

export interface PairedResult {
  readonly workload: WorkloadName;
  readonly size: number;
  readonly provider: string;
  readonly adapter: string;
  readonly bare_fps: number;
  readonly delivered_fps: number;
  /** Median over rounds of delivered ÷ the adjacent bare phase. */
  readonly delivered_ratio: number;
  readonly frame_ms_bare: number;
  /** Frames one WebRTC viewer decoded per second, and ÷ the adjacent bare phase (when asked). */
  readonly webrtc_fps?: number;
  readonly webrtc_ratio?: number;
  readonly rounds: number;
  readonly phase_ms: number;
}

export interface PairedRun {
  readonly result: PairedResult;
  /** The bare loop's first output (the same input on every provider: for comparing them). */
  readonly first: Uint8Array;
  /** createSession's own check of a GPU session against the CPU (null on the CPU). */
  readonly check: OutputCheck | null;
}

/** Runs the paired rounds; `client` is the bench's Socket.IO client process. */
export async function pairedRun(client: ChildRpc<ClientRequest>, workload: WorkloadName, size: number, opts: PairedOptions): Promise<PairedRun> {
  const bare = new BareWorker({ name: workload, size, provider: opts.provider, ...(opts.threads ? { threads: opts.threads } : {}), ...(opts.ocrPath ? { ocrPath: opts.ocrPath } : {}) });
  const ready = await bare.ready;
  const rt = await createRuntime({ ...served(workload, size, opts.ocrPath), ort: { provider: opts.provider, ...(opts.threads ? { threads: opts.threads } : {}) }, logger: pino({ level: 'warn' }) });
  try {
    await rt.ready();
    const server = await listen(rt, { host: '127.0.0.1', port: 0, requestsPerSecond: 10_000, requestBurst: 10_000 });
    await client.ask({ type: 'connect', url: server.url, clients: 1 });
    if (opts.webrtc) await opts.webrtc.ask({ type: 'open', url: server.url, viewers: 1 });
    const b: number[] = [];
    const d: number[] = [];
    const v: number[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      b.push(await bare.fps(opts.phaseMs));
      await client.ask({ type: 'start', encoding: 'raw' }); // returns at the first frame
      await sleep(50);
      const w = await client.ask<{ frames: number; ms: number }>({ type: 'window', ms: opts.phaseMs });
      d.push((w.frames * 1000) / w.ms);
      await client.ask({ type: 'stop' });
      if (opts.webrtc) v.push(await webrtcPhase(opts.webrtc, opts.phaseMs, rt));
      process.stderr.write(`  ${workload} ${size}² ${ready.provider} round ${round + 1}/${opts.rounds}: bare ${b.at(-1)!.toFixed(1)} delivered ${d.at(-1)!.toFixed(1)}${opts.webrtc ? ` webrtc ${v.at(-1)!.toFixed(1)}` : ''} fps\n`);
    }
    if (opts.webrtc) await opts.webrtc.ask({ type: 'open', url: server.url, viewers: 0 });
    await server.close();
    const result: PairedResult = {
      workload,
      size,
      provider: ready.provider,
      adapter: ready.adapter,
      bare_fps: r2(median(b)),
      delivered_fps: r2(median(d)),
      delivered_ratio: r3(median(d.map((x, i) => x / b[i]!))),
      frame_ms_bare: r2(1000 / median(b)),
      ...(v.length ? { webrtc_fps: r2(median(v)), webrtc_ratio: r3(median(v.map((x, i) => x / b[i]!))) } : {}),
      rounds: opts.rounds,
      phase_ms: opts.phaseMs,
    };
    return { result, first: ready.first, check: ready.check };
  } finally {
    await rt.shutdown();
    await bare.close();
  }
}

/** One WebRTC phase: the viewer's session, frames it decoded per second, then idle again. */
async function webrtcPhase(viewers: ChildRpc<RtcClientRequest>, ms: number, rt: { phase(): string }): Promise<number> {
  await viewers.ask({ type: 'start' });
  await sleep(300); // negotiation and the first keyframe are not throughput
  const w = await viewers.ask<RtcWindow>({ type: 'window', ms });
  await viewers.ask({ type: 'stop' });
  while (rt.phase() !== 'idle') await sleep(1);
  return (w.frames[0]! * 1000) / w.ms;
}

/** The first outputs of two providers on the same input, byte by byte. */
export function compareFirst(a: Uint8Array, cpu: Uint8Array): { max_abs_diff: number; share_over_2: number } {
  if (a.length !== cpu.length) return { max_abs_diff: Infinity, share_over_2: 1 };
  let max = 0;
  let over = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - cpu[i]!);
    if (d > max) max = d;
    if (d > 2) over++;
  }
  return { max_abs_diff: max, share_over_2: Math.round((over / Math.max(1, a.length)) * 1e6) / 1e6 };
}

export function networksMarkdown(results: readonly PairedResult[]): string {
  const rows = results.map((r) => `| ${r.workload} | ${r.size}² | ${r.provider} | ${r.bare_fps} | ${r.frame_ms_bare} | ${r.delivered_fps} | ${r.delivered_ratio} | ${r.rounds} × ${r.phase_ms} ms |`);
  return `| workload | size | provider | bare fps | ms/frame bare | delivered raw fps | delivered ÷ bare (median of pairs) | rounds × phase |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}`;
}

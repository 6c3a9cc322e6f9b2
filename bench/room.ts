/**
 * The encode-once room sender (`--webrtc-sender room`) in `npm run bench` (`-- --room-only`, or
 * `--parts room`). bench/run.ts runs this file in a process of its own: it loads node-datachannel
 * (the room) and must not share a process with libwebrtc (wrtc). Each server runs in a child
 * (bench/server-process.ts) and measures its own process CPU per frame; viewers are other children.
 *
 *   viewers      paced 60 fps, broadcast: process CPU per frame with no viewer, and with 1, 8 and
 *                32 viewers (node-datachannel receivers, bench/room-receivers.ts, spread over
 *                RECEIVER_PROCESSES processes, counting whole frames as they arrive); at 256²,
 *                alternating with them, 1 and 8 libwebrtc viewers (bench/webrtc-client.ts, one
 *                process, decoding) on the room sender and on the wrtc sender
 *   quality      bitrate and luma PSNR in process (bench/room-quality.ts)
 *   delivered    bare loop, then the room server with one libwebrtc viewer, in paired phases
 *   chromium     glass-to-glass at 256², 60 fps, with the playout-delay extension and without:
 *                two room servers (one each), two pages, their sessions run in turn
 *   late joiner  a libwebrtc viewer joins a running session: offer → first decoded frame
 */
import { pathToFileURL } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { ChildRpc, answerRequests } from './child-rpc.ts';
import { Bare } from './bare.ts';
import type { ServerRequest, ServerWindow } from './server-process.ts';
import type { CountWindow, ReceiversRequest } from './room-receivers.ts';
import type { RtcClientRequest, RtcWindow } from './webrtc-client.ts';
import type { JoinerRequest } from './joiner-process.ts';
import { roomQuality, type QualityRow } from './room-quality.ts';
import { armPage, jitterOf, startAndWait, stamp, stopAndWait, world, type Dom } from './webrtc.ts';
import { median, pct, r2, r3, sleep } from './stats.ts';
import type { TransportOptions } from '../src/transport/options.ts';
import type { ProviderChoice } from '../src/gpu/providers.ts';
import { CHROMIUM } from '../test/setup/system.ts';

export interface RoomBenchOptions {
  readonly quick: boolean;
  readonly phaseMs: number;
  readonly rounds: number;
  readonly sizes: readonly number[];
  readonly threads: number | undefined;
  readonly provider: ProviderChoice;
}

const RECEIVER_PROCESSES = 8;
const COUNTS = [1, 8, 32] as const;
const WRTC_COUNTS = [1, 8] as const;
/** Glass-to-glass phase: ~390 frames at 60 fps, ≥ 300 where a loaded machine presents 47 fps. */
const G2G_MS = 6500;

const broadcast = (sender: 'room' | 'wrtc', playoutDelay = true): Partial<TransportOptions> =>
  ({ viewers: 'broadcast', maxViewers: 40, webrtc: { sender, playoutDelay, maxPeers: 40, iceHostAddresses: ['127.0.0.1'] } }) as Partial<TransportOptions>;

type Server = ChildRpc<ServerRequest>;

async function server(size: number, fps: number, threads: number | undefined, transport: Partial<TransportOptions>): Promise<{ rpc: Server; url: string }> {
  const rpc: Server = new ChildRpc(new URL('./server-process.ts', import.meta.url));
  const { url } = await rpc.ask<{ url: string }>({ type: 'open', size, fps, transport, ...(threads ? { threads } : {}) });
  return { rpc, url };
}

/** Viewers spread over processes of one kind (their requests are the same). */
class Viewers {
  private used = 0;
  constructor(private readonly procs: ChildRpc<ReceiversRequest | RtcClientRequest>[]) {}

  async open(url: string, n: number): Promise<void> {
    const per = Math.ceil(n / this.procs.length);
    const shares = this.procs.map((_, i) => Math.max(0, Math.min(per, n - i * per)));
    this.used = shares.filter((s) => s > 0).length;
    const opened = await Promise.all(this.procs.map((p, i) => (shares[i]! > 0 ? p.ask<{ retries?: number }>({ type: 'open', url, viewers: shares[i]! }) : undefined)));
    opened.forEach((o, i) => o?.retries !== undefined && (this.retriesBy[i] = o.retries));
  }

  /** Receivers whose peer failed and was made again (room-receivers.ts), per process, cumulative. */
  private readonly retriesBy: number[] = [];
  get retries(): number {
    return this.retriesBy.reduce((a, b) => a + b, 0);
  }

  /** The first process's first client owns the session; every other viewer attaches. */
  async start(): Promise<void> {
    await this.procs[0]!.ask({ type: 'start' });
    await Promise.all(this.procs.slice(1, this.used).map((p) => p.ask({ type: 'attach' })));
  }

  stop(): Promise<unknown> {
    return this.procs[0]!.ask({ type: 'stop' });
  }

  async window(ms: number): Promise<CountWindow> {
    const ws = await Promise.all(this.procs.slice(0, this.used).map((p) => p.ask<CountWindow>({ type: 'window', ms })));
    return { ms: Math.max(...ws.map((w) => w.ms)), frames: ws.flatMap((w) => w.frames), bytes: ws.flatMap((w) => w.bytes) };
  }

  close(): Promise<unknown> {
    return Promise.all(this.procs.map((p) => p.close()));
  }
}

interface Phase {
  model_fps: number;
  cpu_ms_per_frame: number;
  min_received_fps: number;
  median_received_fps: number;
  mbit_s: number;
  /** Viewers that received no frame in the window (still waiting for their first keyframe, or lost). */
  viewers_without_frames: number;
}

async function phase(s: { rpc: Server; url: string }, v: Viewers, n: number, ms: number): Promise<Phase> {
  await v.open(s.url, n);
  await v.start();
  await sleep(1000); // keyframes for every join, and the encoder's rate control settling
  const [m, w] = await Promise.all([s.rpc.ask<ServerWindow>({ type: 'measure', ms }), v.window(ms)]);
  await v.stop();
  const fps = w.frames.map((f) => (f * 1000) / w.ms);
  return { model_fps: m.fps, cpu_ms_per_frame: m.cpuMsPerFrame, min_received_fps: Math.min(...fps), median_received_fps: median(fps), mbit_s: (median(w.bytes) * 8) / w.ms / 1000, viewers_without_frames: w.frames.filter((f) => f === 0).length };
}

async function alone(s: { rpc: Server }, ms: number): Promise<number> {
  await s.rpc.ask({ type: 'run', on: true });
  await sleep(200);
  const m = await s.rpc.ask<ServerWindow>({ type: 'measure', ms });
  await s.rpc.ask({ type: 'run', on: false });
  return m.cpuMsPerFrame;
}

const summary = (xs: Phase[]): Phase => ({
  model_fps: r2(median(xs.map((x) => x.model_fps))),
  cpu_ms_per_frame: r3(median(xs.map((x) => x.cpu_ms_per_frame))),
  min_received_fps: r2(median(xs.map((x) => x.min_received_fps))),
  median_received_fps: r2(median(xs.map((x) => x.median_received_fps))),
  mbit_s: r3(median(xs.map((x) => x.mbit_s))),
  viewers_without_frames: Math.max(...xs.map((x) => x.viewers_without_frames)),
});

/** CPU per frame by viewer count, and the wrtc sender beside the room at 256². */
async function viewerCost(o: RoomBenchOptions, size: number) {
  const light = new Viewers(Array.from({ length: RECEIVER_PROCESSES }, () => new ChildRpc<ReceiversRequest>(new URL('./room-receivers.ts', import.meta.url))));
  const decoding = new Viewers([new ChildRpc<RtcClientRequest>(new URL('./webrtc-client.ts', import.meta.url))]);
  const room = await server(size, 60, o.threads, broadcast('room'));
  const wrtc = size === 256 ? await server(size, 60, o.threads, broadcast('wrtc')) : null;
  const base: number[] = [];
  const byCount = new Map<string, Phase[]>();
  const add = (k: string, p: Phase) => byCount.set(k, [...(byCount.get(k) ?? []), p]);
  for (let round = 0; round < (o.quick ? 1 : 2); round++) {
    base.push(await alone(room, o.phaseMs));
    for (const n of COUNTS) add(`room_${n}`, await phase(room, light, n, o.phaseMs));
    for (const n of wrtc ? WRTC_COUNTS : []) {
      add(`room_libwebrtc_viewers_${n}`, await phase(room, decoding, n, o.phaseMs));
      add(`wrtc_libwebrtc_viewers_${n}`, await phase(wrtc!, decoding, n, o.phaseMs));
    }
    process.stderr.write(`  room viewers ${size}² round ${round + 1}: ${[...byCount].map(([k, v]) => `${k} ${v.at(-1)!.cpu_ms_per_frame.toFixed(2)} ms/frame (model ${v.at(-1)!.model_fps.toFixed(0)}, slowest ${v.at(-1)!.min_received_fps.toFixed(0)} fps)`).join('; ')}\n`);
  }
  await Promise.all([light.close(), decoding.close(), room.rpc.close(), wrtc?.rpc.close()]);
  const rows = Object.fromEntries([...byCount].map(([k, v]) => [k, summary(v)]));
  const c = (n: number, round: number) => byCount.get(`room_${n}`)![round]!.cpu_ms_per_frame;
  const slope = (n: number) => r3(median(base.map((_, i) => (c(n, i) - c(1, i)) / (n - 1))));
  return { size, cpu_ms_per_frame_no_viewer: r3(median(base)), receiver_processes: RECEIVER_PROCESSES, receiver_retries: light.retries, phases: rows, ms_per_extra_viewer_1_to_8: slope(8), ms_per_extra_viewer_1_to_32: slope(32) };
}

/** Delivered ÷ bare: the unpaced model with one libwebrtc viewer of the room, against the bare loop. */
async function delivered(o: RoomBenchOptions, size: number) {
  const bare = new Bare(size, { threads: o.threads, provider: o.provider });
  const room = await server(size, 0, o.threads, broadcast('room'));
  const v = new Viewers([new ChildRpc<RtcClientRequest>(new URL('./webrtc-client.ts', import.meta.url))]);
  const b: number[] = [];
  const got: Phase[] = [];
  for (let round = 0; round < o.rounds; round++) {
    b.push(await bare.fps(o.phaseMs));
    got.push(await phase(room, v, 1, o.phaseMs));
    process.stderr.write(`  room delivered ${size}² round ${round + 1}: bare ${b.at(-1)!.toFixed(0)}, model ${got.at(-1)!.model_fps.toFixed(0)}, received ${got.at(-1)!.min_received_fps.toFixed(0)} fps\n`);
  }
  await Promise.all([v.close(), room.rpc.close(), bare.close()]);
  const ratio = (f: (p: Phase) => number) => r3(median(got.map((p, i) => f(p) / b[i]!)));
  return { size, bare_fps: r2(median(b)), model_fps: r2(median(got.map((p) => p.model_fps))), received_fps: r2(median(got.map((p) => p.min_received_fps))), model_ratio: ratio((p) => p.model_fps), received_ratio: ratio((p) => p.min_received_fps), rounds: o.rounds };
}

/** A room server with every frame stamped with its number, and the emit time of each number. */
async function stampedRoom(o: RoomBenchOptions, playoutDelay: boolean) {
  const emitted = new Map<number, number>();
  const w = await world(256, 60, o.threads, { webrtc: { sender: 'room', playoutDelay } } as Partial<TransportOptions>, (rt) =>
    rt.on('frame', (f) => {
      stamp(f.data, f.width, f.format, f.seq & 0xffff);
      emitted.set(f.seq & 0xffff, f.t);
    }),
  );
  return { w, emitted };
}

type Rtc = { __rtc: { phase: string; samples: [number, number][] } };

/** One page's glass-to-glass phase: its session started, G2G_MS of presented frames, stopped. */
async function g2gPhase(page: Page, emitted: Map<number, number>) {
  await startAndWait(page);
  await sleep(1000);
  const jb0 = await jitterOf(page);
  await page.evaluate(() => Object.assign((globalThis as unknown as Rtc).__rtc, { phase: 'webrtc', samples: [] }));
  await sleep(G2G_MS);
  const samples = await page.evaluate(() => {
    const r = (globalThis as unknown as Rtc).__rtc;
    r.phase = 'off';
    return r.samples;
  });
  const [delay, count] = await jitterOf(page);
  await stopAndWait(page);
  const ms = samples.map(([seq, at]) => at - (emitted.get(seq) ?? Number.NaN)).filter((x) => x >= 0 && x < 2000);
  return { ms, presented: samples.length, jitterMs: count > jb0[1] ? ((delay - jb0[0]) / (count - jb0[1])) * 1000 : Number.NaN };
}

async function glassToGlass(o: RoomBenchOptions) {
  const variants = [{ key: 'playout_delay_on', ...(await stampedRoom(o, true)) }, { key: 'playout_delay_off', ...(await stampedRoom(o, false)) }];
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'] });
  const out: Record<string, { p50_ms: number; p99_ms: number; p50_by_run: number[]; frames: number; presented_fps: number; jitter_buffer_ms: number }> = {};
  try {
    const pages = [];
    for (const v of variants) {
      const page = await (await browser.newContext()).newPage();
      await page.goto(`${v.w.server.url}/`);
      await page.waitForFunction(() => (globalThis as unknown as Dom).document.getElementById('state')?.textContent === 'idle');
      await startAndWait(page);
      await armPage(page, 1_000_000);
      await stopAndWait(page);
      pages.push(page);
    }
    const runs = variants.map(() => [] as Awaited<ReturnType<typeof g2gPhase>>[]);
    for (let round = 0; round < (o.quick ? 2 : 3); round++) {
      for (const [i, v] of variants.entries()) {
        runs[i]!.push(await g2gPhase(pages[i]!, v.emitted));
        process.stderr.write(`  room chromium ${v.key} run ${round + 1}: ${runs[i]!.at(-1)!.ms.length} frames, p50 ${pct(runs[i]!.at(-1)!.ms, 50).toFixed(1)} ms\n`);
      }
    }
    for (const [i, v] of variants.entries()) {
      const all = runs[i]!.flatMap((r) => r.ms);
      out[v.key] = {
        p50_ms: r2(pct(all, 50)),
        p99_ms: r2(pct(all, 99)),
        p50_by_run: runs[i]!.map((r) => r2(pct(r.ms, 50))),
        frames: all.length,
        presented_fps: r2(median(runs[i]!.map((r) => (r.presented * 1000) / G2G_MS))),
        jitter_buffer_ms: r2(median(runs[i]!.map((r) => r.jitterMs))),
      };
    }
  } finally {
    await browser.close();
    for (const v of variants) await v.w.close();
  }
  return out;
}

/** Late joiners of a running 256² session (its owner a light receiver): offer → first decoded frame. */
async function lateJoiner(o: RoomBenchOptions) {
  const room = await server(256, 60, o.threads, broadcast('room'));
  const owner = new Viewers([new ChildRpc<ReceiversRequest>(new URL('./room-receivers.ts', import.meta.url))]);
  await owner.open(room.url, 1);
  await owner.start();
  const joiner = new ChildRpc<JoinerRequest>(new URL('./joiner-process.ts', import.meta.url));
  const ms: number[] = [];
  for (let i = 0; i < (o.quick ? 5 : 15); i++) {
    await sleep(300); // past the keyframe rate limit (100 ms), so each join is its own request
    ms.push((await joiner.ask<{ offerToFrameMs: number }>({ type: 'join', url: room.url, closePeer: i % 2 === 0 })).offerToFrameMs);
  }
  await owner.stop();
  await Promise.all([joiner.close(), owner.close(), room.rpc.close()]);
  return { offer_to_first_decoded_frame_ms: { p50: r2(median(ms)), max: r2(Math.max(...ms)), joins: ms.length } };
}

/** BENCH_ROOM_SECTIONS=quality,viewers,delivered,late,chromium (default all): a focused run. */
const SECTIONS = (process.env.BENCH_ROOM_SECTIONS ?? 'quality,viewers,delivered,late,chromium').split(',');

/** One section, or null when not asked for; a section that fails says why in the results and the others still run. */
async function section<T>(name: string, run: () => Promise<T>): Promise<T | { error: string } | null> {
  if (!SECTIONS.includes(name)) return null;
  process.stderr.write(`  room: ${name}…\n`);
  try {
    return await run();
  } catch (err) {
    process.stderr.write(`  room: ${name} failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

async function each<T>(sizes: readonly number[], fn: (size: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (const size of sizes) out.push(await fn(size));
  return out;
}

async function roomResults(o: RoomBenchOptions) {
  return {
    quality: await section('quality', () => roomQuality(o.sizes, o.threads)),
    viewers: await section('viewers', () => each(o.sizes, (size) => viewerCost(o, size))),
    delivered: await section('delivered', () => each(o.sizes, (size) => delivered(o, size))),
    late_joiner_256: await section('late', () => lateJoiner(o)),
    glass_to_glass_256: await section('chromium', () => glassToGlass(o)),
  };
}

type RoomResult = Awaited<ReturnType<typeof roomResults>>;

export async function runRoomBench(o: RoomBenchOptions): Promise<{ result: RoomResult; markdown: string }> {
  const result = await roomResults(o);
  return { result, markdown: roomMarkdown(result) };
}

const ok = <T>(x: T | { error: string } | null): x is T => x !== null && !(typeof x === 'object' && 'error' in (x as object));
const failed = (name: string, x: unknown): string => (x && typeof x === 'object' && 'error' in x ? `Room ${name}: failed (${String((x as { error: string }).error)}).` : '');

function viewersMarkdown(vs: Awaited<ReturnType<typeof viewerCost>>[]): string {
  const rows = vs.flatMap((v) => [
    `| ${v.size}² | no viewer | ${v.cpu_ms_per_frame_no_viewer} | | | | |`,
    ...Object.entries(v.phases).map(([k, p]) => `| ${v.size}² | ${k} | ${p.cpu_ms_per_frame} | ${p.model_fps} | ${p.min_received_fps} / ${p.median_received_fps} | ${p.viewers_without_frames} | ${p.mbit_s} |`),
  ]);
  const slopes = vs.map((v) => `${v.size}²: ${v.ms_per_extra_viewer_1_to_8} ms per extra viewer from 1 to 8, ${v.ms_per_extra_viewer_1_to_32} from 1 to 32`).join('; ');
  return `| room sender, paced 60 fps | viewers | server process CPU ms/frame | model fps | slowest / median viewer fps | viewers without a frame | Mbit/s per viewer |
|---|---|---|---|---|---|---|
${rows.join('\n')}

Per extra viewer (paired by round): ${slopes}. room_N: node-datachannel receivers in ${vs[0]?.receiver_processes} processes (${vs.map((v) => v.receiver_retries).join('/')} peers retried), frames counted as they arrive; *_libwebrtc_viewers_N: libwebrtc viewers decoding, one process.`;
}

function qualityMarkdown(qs: QualityRow[]): string {
  return `| room quality, 60 fps | picture | default kbit/s | Mbit/s | Y-PSNR mean (min) dB | keyframe B (delta median B) | keyframe Y-PSNR vs around it dB |
|---|---|---|---|---|---|---|
${qs.map((q) => `| ${q.size}² | ${q.picture} | ${q.target_kbps} | ${q.mbit_s} | ${q.y_psnr_db_mean} (${q.y_psnr_db_min}) | ${q.keyframe_bytes} (${q.delta_frame_bytes_median}) | ${q.keyframe_psnr_db} vs ${q.around_keyframe_psnr_db} |`).join('\n')}`;
}

function deliveredMarkdown(ds: Awaited<ReturnType<typeof delivered>>[]): string {
  return `| room, one libwebrtc viewer, unpaced | bare fps | model fps (÷ bare) | received fps (÷ bare) |
|---|---|---|---|
${ds.map((d) => `| ${d.size}² | ${d.bare_fps} | ${d.model_fps} (${d.model_ratio}) | ${d.received_fps} (${d.received_ratio}) |`).join('\n')}`;
}

function g2gMarkdown(g: Awaited<ReturnType<typeof glassToGlass>>): string {
  return `| room, Chromium, 256², 60 fps | p50 ms | p99 ms | p50 by run | frames | presented fps | jitter buffer ms |
|---|---|---|---|---|---|---|
${Object.entries(g).map(([k, v]) => `| ${k} | ${v.p50_ms} | ${v.p99_ms} | ${v.p50_by_run.join(', ')} | ${v.frames} | ${v.presented_fps} | ${v.jitter_buffer_ms} |`).join('\n')}`;
}

function roomMarkdown(r: RoomResult): string {
  const late = r.late_joiner_256;
  return [
    ok(r.viewers) ? viewersMarkdown(r.viewers) : failed('viewers', r.viewers),
    ok(r.quality) ? qualityMarkdown(r.quality) : failed('quality', r.quality),
    ok(r.delivered) ? deliveredMarkdown(r.delivered) : failed('delivered', r.delivered),
    ok(r.glass_to_glass_256) ? g2gMarkdown(r.glass_to_glass_256) : failed('chromium', r.glass_to_glass_256),
    ok(late) ? `Late joiner (libwebrtc, Node): offer → first decoded frame p50 ${late.offer_to_first_decoded_frame_ms.p50} ms, max ${late.offer_to_first_decoded_frame_ms.max} (${late.offer_to_first_decoded_frame_ms.joins} joins).` : failed('late joiner', late),
  ].filter(Boolean).join('\n\n');
}

/** bench/run.ts's way in: this file in its own process, asked once. */
export type RoomRequest = { type: 'run'; options: RoomBenchOptions } | { type: 'close' };

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  answerRequests<RoomRequest>(async (m) => {
    if (m.type === 'close') {
      setTimeout(() => process.exit(0), 10);
      return { ok: true };
    }
    return runRoomBench(m.options);
  });
}

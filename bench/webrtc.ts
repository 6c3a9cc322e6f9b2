/**
 * The WebRTC section of `npm run bench` (called by bench/run.ts; `--no-webrtc` skips it).
 *
 *   throughput   paired phases: the bare loop, then the runtime with one WebRTC viewer (its
 *                own process, libwebrtc through @roamhq/wrtc): the model's rate ÷ bare, and
 *                the frames the viewer decodes (libwebrtc caps a sender at 60 fps by default)
 *   cost at 60   the model paced at 60 fps: paired phases without a viewer and with one; the
 *                process CPU difference per frame is the WebRTC cost (I420 conversion, VP8
 *                encoding, packetization, pacing), and the received bitrate
 *   spectators   broadcast at 60 fps and at saturation with 1, 4 and 8 spectators
 *   Chromium     the demo page in headless Chromium: glass-to-glass latency (the frame's
 *                sequence number painted into the picture, read back at requestVideoFrameCallback;
 *                emit time from the worker, same clock), Socket.IO raw and JPEG beside it in
 *                alternating phases (their time: the next animation frame after the frame event),
 *                PSNR of frames read back from the <video> against the model's, and Start →
 *                first presented frame; WebRTC with the page's jitterBufferTarget 0 and with
 *                Chromium's default as two of the alternating phases; command → first presented
 *                frame that shows it, in paired trials: WebRTC (both targets) and Socket.IO raw
 *                (the page's canvas read at the next animation frame)
 */
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { chromium, type Page } from 'playwright-core';
import { createRuntime, type Runtime } from '../src/runtime/runtime.ts';
import { listen, type FramehostHttpServer } from '../src/transport/server.ts';
import type { TransportOptions } from '../src/transport/options.ts';
import { CHROMIUM } from '../test/setup/system.ts';
import type { RtcClientRequest, RtcWindow } from './webrtc-client.ts';
import { paletteBytes, type PaletteName } from '../src/models/gray-scott/palettes.ts';
import { ChildRpc } from './child-rpc.ts';
import { median, pct, r2, r3, sleep } from './stats.ts';

export interface RtcBenchOptions {
  readonly quick: boolean;
  readonly phaseMs: number;
  readonly rounds: number;
  readonly sizes: readonly number[];
  readonly threads: number | undefined;
  /** The bare loop of bench/run.ts. */
  readonly bare: (size: number) => { fps(ms: number): Promise<number>; close(): Promise<number> };
}


/** The WebRTC viewer, in its own process. */
type Viewers = ChildRpc<RtcClientRequest>;

export interface World {
  rt: Runtime;
  server: FramehostHttpServer;
  close(): Promise<void>;
}

export async function world(size: number, fps: number, threads: number | undefined, transport: Partial<TransportOptions> = {}, beforeListen?: (rt: Runtime) => void): Promise<World> {
  const rt = await createRuntime({ modelOptions: { size, fps }, ort: threads ? { threads } : {}, logger: pino({ level: 'warn' }) });
  await rt.ready();
  beforeListen?.(rt);
  const server = await listen(rt, { host: '127.0.0.1', port: 0, requestsPerSecond: 10_000, requestBurst: 10_000, ...transport, webrtc: { iceHostAddresses: ['127.0.0.1'], ...transport.webrtc } });
  return {
    rt,
    server,
    async close() {
      await server.close();
      await rt.shutdown();
    },
  };
}

export async function untilIdle(rt: Runtime): Promise<void> {
  while (rt.phase() !== 'idle') await sleep(1);
}

/** Frames generated and process CPU (all threads) during `ms`. */
export async function measure(rt: Runtime, ms: number, alongside?: Promise<RtcWindow>): Promise<{ fps: number; cpuMsPerFrame: number; frames: number; window?: RtcWindow }> {
  let frames = 0;
  const off = rt.on('frame', (f) => (frames += f.count));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const [window] = await Promise.all([alongside, sleep(ms)]);
  const cpu = process.cpuUsage(cpu0);
  const took = performance.now() - t0;
  off();
  return { fps: (frames * 1000) / took, cpuMsPerFrame: (cpu.user + cpu.system) / 1000 / Math.max(1, frames), frames, ...(window ? { window } : {}) };
}

export const windowFps = (w: RtcWindow): number[] => w.frames.map((f) => (f * 1000) / w.ms);
export const windowKbps = (w: RtcWindow): number[] => w.bytes.map((b) => (b * 8) / w.ms);

async function throughput(o: RtcBenchOptions, size: number, viewers: Viewers) {
  const bare = o.bare(size);
  const w = await world(size, 0, o.threads);
  await viewers.ask({ type: 'open', url: w.server.url, viewers: 1 });
  const b: number[] = [];
  const gen: number[] = [];
  const recv: number[] = [];
  for (let round = 0; round < o.rounds; round++) {
    b.push(await bare.fps(o.phaseMs));
    await viewers.ask({ type: 'start' });
    await sleep(300);
    const m = await measure(w.rt, o.phaseMs, viewers.ask<RtcWindow>({ type: 'window', ms: o.phaseMs }));
    gen.push(m.fps);
    recv.push(windowFps(m.window!)[0]!);
    await viewers.ask({ type: 'stop' });
    await untilIdle(w.rt);
    process.stderr.write(`  webrtc ${size}² round ${round + 1}/${o.rounds}: bare ${b.at(-1)!.toFixed(0)} model with a WebRTC viewer ${gen.at(-1)!.toFixed(0)} received ${recv.at(-1)!.toFixed(0)} fps\n`);
  }
  await w.close();
  await bare.close();
  const ratio = (xs: number[]) => r3(median(xs.map((x, i) => x / b[i]!)));
  return { size, bare_fps: r2(median(b)), model_fps: r2(median(gen)), received_fps: r2(median(recv)), model_ratio: ratio(gen), received_ratio: ratio(recv), rounds: o.rounds };
}

async function pacedCost(o: RtcBenchOptions, size: number, viewers: Viewers) {
  const w = await world(size, 60, o.threads);
  await viewers.ask({ type: 'open', url: w.server.url, viewers: 1 });
  const alone: number[] = [];
  const withViewer: number[] = [];
  const fps: number[] = [];
  const kbps: number[] = [];
  for (let round = 0; round < o.rounds; round++) {
    w.rt.start();
    await sleep(200);
    alone.push((await measure(w.rt, o.phaseMs)).cpuMsPerFrame);
    w.rt.stop();
    await untilIdle(w.rt);
    await viewers.ask({ type: 'start' });
    await sleep(500); // the encoder's ramp-up
    const m = await measure(w.rt, o.phaseMs, viewers.ask<RtcWindow>({ type: 'window', ms: o.phaseMs }));
    withViewer.push(m.cpuMsPerFrame);
    fps.push(windowFps(m.window!)[0]!);
    kbps.push(windowKbps(m.window!)[0]!);
    await viewers.ask({ type: 'stop' });
    await untilIdle(w.rt);
  }
  await w.close();
  return {
    size,
    cpu_ms_per_frame_alone: r3(median(alone)),
    cpu_ms_per_frame_webrtc: r3(median(withViewer)),
    webrtc_ms_per_frame: r3(median(withViewer.map((x, i) => x - alone[i]!))),
    received_fps: r2(median(fps)),
    mbit_s: r3(median(kbps) / 1000),
  };
}

async function spectators(o: RtcBenchOptions, viewers: Viewers) {
  const out: Record<string, { model_fps: number; min_received_fps: number; median_received_fps: number; cpu_ms_per_frame: number }> = {};
  for (const fps of [60, 0]) {
    const w = await world(256, fps, o.threads, { viewers: 'broadcast', maxViewers: 16, webrtc: { maxPeers: 16 } });
    for (const n of [1, 4, 8]) {
      await viewers.ask({ type: 'open', url: w.server.url, viewers: n });
      const model: number[] = [];
      const mins: number[] = [];
      const meds: number[] = [];
      const cpu: number[] = [];
      for (let round = 0; round < (o.quick ? 1 : 2); round++) {
        await viewers.ask({ type: 'start' });
        await sleep(500);
        const m = await measure(w.rt, o.phaseMs, viewers.ask<RtcWindow>({ type: 'window', ms: o.phaseMs }));
        const got = windowFps(m.window!);
        model.push(m.fps);
        mins.push(Math.min(...got));
        meds.push(median(got));
        cpu.push(m.cpuMsPerFrame);
        await viewers.ask({ type: 'stop' });
        await untilIdle(w.rt);
      }
      out[`${fps === 0 ? 'saturated' : 'paced60'}_${n}`] = { model_fps: r2(median(model)), min_received_fps: r2(median(mins)), median_received_fps: r2(median(meds)), cpu_ms_per_frame: r3(median(cpu)) };
      process.stderr.write(`  spectators ${fps === 0 ? 'saturated' : '60 fps'} ×${n}: model ${median(model).toFixed(0)} fps, slowest spectator ${median(mins).toFixed(0)} fps\n`);
    }
    await w.close();
  }
  return out;
}

// ---------- Chromium ----------

const STAMP_BITS = 16;
const STAMP_ROWS = 8;

/** Paint `seq` into the top rows as 16 black/white blocks (survives VP8), in place. */
export function stamp(data: Uint8Array, width: number, format: string, seq: number): void {
  const bpp = format === 'rgb' ? 3 : 4;
  const block = Math.floor(width / STAMP_BITS);
  for (let y = 0; y < STAMP_ROWS; y++) {
    for (let x = 0; x < block * STAMP_BITS; x++) {
      const v = (seq >> Math.floor(x / block)) & 1 ? 255 : 0;
      const i = (y * width + x) * bpp;
      data[i] = v;
      data[i + 1] = v;
      data[i + 2] = v;
    }
  }
}

// The page's globals as page.evaluate callbacks see them (the bench's tsconfig has no DOM lib).
export interface Dom {
  document: { getElementById(id: string): { textContent: string | null } | null };
}

/**
 * In the page: read the stamp of every presented WebRTC frame; every `every`-th, the whole
 * picture; and the Socket.IO frames' next animation frame. A string, not a function: tsx names
 * functions with a helper (`__name`) that does not exist in the page.
 */
export async function armPage(page: Page, every: number): Promise<void> {
  const script = `(() => {
    const bits = ${STAMP_BITS}, rows = ${STAMP_ROWS}, every = ${every};
    const w = globalThis;
    w.__rtc = { phase: 'off', samples: [], pictures: [], raw: [], click: null };
    const video = w.framehost.media.view().video;
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    let n = 0;
    const onFrame = (now, meta) => {
      video.requestVideoFrameCallback(onFrame);
      const click = w.__rtc.click;
      if (click && click.via === 'webrtc' && click.t1 === null) {
        // Command → first presented frame that shows it: the middle pixel turns the palette's background.
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        ctx.drawImage(video, 0, 0);
        const p = ctx.getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data;
        const d = Math.abs(p[0] - click.rgb[0]) + Math.abs(p[1] - click.rgb[1]) + Math.abs(p[2] - click.rgb[2]);
        if (d < 40) click.t1 = performance.timeOrigin + meta.presentationTime;
        return;
      }
      if (!w.__rtc.phase.startsWith('webrtc')) return;
      const at = performance.timeOrigin + meta.presentationTime;
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      ctx.drawImage(video, 0, 0);
      const block = Math.floor(canvas.width / bits);
      const row = ctx.getImageData(0, rows / 2, canvas.width, 1).data;
      let seq = 0;
      for (let b = 0; b < bits; b++) if (row[(b * block + Math.floor(block / 2)) * 4] > 128) seq |= 1 << b;
      w.__rtc.samples.push([seq, at]);
      if (n++ % every === 0 && w.__rtc.pictures.length < 40) {
        const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let s = '';
        for (let i = 0; i < data.length; i += 0x8000) s += String.fromCharCode(...data.subarray(i, i + 0x8000));
        w.__rtc.pictures.push([seq, btoa(s)]);
      }
    };
    video.requestVideoFrameCallback(onFrame);
    // The receiver's jitter buffer: 0 (what the page asks for) or null (Chromium's default).
    const receiver = w.framehost.media.view().pc.getReceivers()[0];
    w.__rtc.jitterTarget = (v) => { receiver.jitterBufferTarget = v; };
    // Cumulative jitter buffer delay (s) and frames emitted, for a per-phase mean.
    w.__rtc.jitter = async () => {
      let delay = 0, emitted = 0;
      (await w.framehost.media.view().pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') { delay = r.jitterBufferDelay || 0; emitted = r.jitterBufferEmittedCount || 0; }
      });
      return [delay, emitted];
    };
    const view = document.getElementById('view');
    w.framehost.client.onFrame((f) => {
      const click = w.__rtc.click;
      if (click && click.via === 'socket' && click.t1 === null) {
        // The same test on what the page painted (raw is drawn synchronously by the page's own
        // listener, which runs before this one), at the next animation frame: its presentation.
        requestAnimationFrame(() => {
          if (click.t1 !== null) return;
          const p = view.getContext('2d').getImageData(view.width >> 1, view.height >> 1, 1, 1).data;
          const d = Math.abs(p[0] - click.rgb[0]) + Math.abs(p[1] - click.rgb[1]) + Math.abs(p[2] - click.rgb[2]);
          if (d < 40) click.t1 = performance.timeOrigin + performance.now();
        });
        return;
      }
      if (w.__rtc.phase !== 'raw' && w.__rtc.phase !== 'jpeg') return;
      const seq = f.meta.seq & 0xffff;
      requestAnimationFrame(() => w.__rtc.raw.push([seq, performance.timeOrigin + performance.now()]));
    });
  })()`;
  await page.evaluate(script);
}

function psnr(a: Uint8Array, b: Uint8Array, width: number, height: number, bppA: number): number {
  let se = 0;
  let n = 0;
  for (let y = STAMP_ROWS + 2; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * bppA;
      const j = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) {
        const d = a[i + c]! - b[j + c]!;
        se += d * d;
        n++;
      }
    }
  }
  const mse = se / n;
  return mse === 0 ? 99 : 10 * Math.log10((255 * 255) / mse);
}

/** A phase of the Chromium section: WebRTC with the page's jitter buffer target (0) or Chromium's default (null), or Socket.IO. */
type Phase = 'webrtc' | 'webrtc_jb_default' | 'raw' | 'jpeg';
const PHASES: readonly Phase[] = ['webrtc', 'webrtc_jb_default', 'raw', 'jpeg'];
type ClickPhase = Exclude<Phase, 'jpeg'>;
const CLICK_PHASES: readonly ClickPhase[] = ['webrtc', 'webrtc_jb_default', 'raw'];
const CLICK_BLOCK = 5;

/** Attach the page with the phase's encoding, and set its receiver's jitter buffer target. */
async function use(page: Page, phase: Phase): Promise<void> {
  const encoding = phase.startsWith('webrtc') ? 'webrtc' : phase;
  await page.evaluate((enc) => (globalThis as unknown as { framehost: { client: { attach(o: { encoding: string }): Promise<unknown> } } }).framehost.client.attach({ encoding: enc }), encoding);
  if (encoding === 'webrtc') await page.evaluate((t) => (globalThis as unknown as { __rtc: { jitterTarget(v: number | null): void } }).__rtc.jitterTarget(t), phase === 'webrtc' ? 0 : null);
}

export const jitterOf = (page: Page): Promise<[number, number]> => page.evaluate(() => (globalThis as unknown as { __rtc: { jitter(): Promise<[number, number]> } }).__rtc.jitter());

type Stats = { framehost: { stats: { frames: number } }; __start: { t: number; frames: number } };

/**
 * Click Start and wait for the page's frame count to move: ms from the click to the animation
 * frame that sees it (the page's stats keep no start time, and firstFrameAt is set once per page).
 */
export async function startAndWait(page: Page): Promise<number> {
  await page.evaluate(() => {
    const w = globalThis as unknown as Stats;
    w.__start = { t: performance.now(), frames: w.framehost.stats.frames };
  });
  await page.click('#start');
  await page.waitForFunction(() => {
    const w = globalThis as unknown as Stats;
    return w.framehost.stats.frames > w.__start.frames;
  }, undefined, { timeout: 20_000, polling: 'raf' });
  return page.evaluate(() => performance.now() - (globalThis as unknown as Stats).__start.t);
}

/** Click Stop and wait for the page to show the server idle. */
export async function stopAndWait(page: Page): Promise<void> {
  await page.click('#stop');
  await page.waitForFunction(() => (globalThis as unknown as Dom).document.getElementById('state')?.textContent === 'idle', undefined, { timeout: 20_000 });
  await sleep(300);
}

export async function chromiumSection(o: Pick<RtcBenchOptions, 'quick' | 'phaseMs' | 'threads'>) {
  const emitted = new Map<number, { t: number; copy: Uint8Array | null }>();
  const w = await world(256, 60, o.threads, {}, (rt) => {
    // Before listen(): this listener runs before the stream's, so every transport sends the stamp.
    rt.on('frame', (f) => {
      stamp(f.data, f.width, f.format, f.seq & 0xffff);
      // The last 300 frames kept whole (~80 MB at 256²) for PSNR; older ones keep their time only.
      emitted.set(f.seq & 0xffff, { t: f.t, copy: f.data.slice() });
      const old = emitted.get((f.seq - 300) & 0xffff);
      if (old) old.copy = null;
      if (emitted.size > 4000) emitted.delete(emitted.keys().next().value!);
    });
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'] });
  try {
    // Start → first presented frame: a fresh page (negotiation included), then Starts on a page whose peer is up.
    const firstFresh: number[] = [];
    const firstWarm: number[] = [];
    const trials = o.quick ? 3 : 5;
    for (let i = 0; i < trials; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${w.server.url}/`);
      await page.waitForFunction(() => (globalThis as unknown as Dom).document.getElementById('state')?.textContent === 'idle');
      firstFresh.push(await startAndWait(page));
      await stopAndWait(page);
      if (i === 0) {
        for (let j = 0; j < trials; j++) {
          firstWarm.push(await startAndWait(page));
          await stopAndWait(page);
        }
      }
      await context.close();
    }

    // Glass-to-glass, alternating transports on one page.
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${w.server.url}/`);
    await page.waitForFunction(() => (globalThis as unknown as Dom).document.getElementById('state')?.textContent === 'idle');
    await startAndWait(page);
    await armPage(page, 5);
    const lat: Record<Phase, number[]> = { webrtc: [], webrtc_jb_default: [], raw: [], jpeg: [] };
    const fpsBy: Record<Phase, number[]> = { webrtc: [], webrtc_jb_default: [], raw: [], jpeg: [] };
    /** The receiver's own mean jitter buffer delay per phase (getStats), ms. */
    const jitterBy: Record<Phase, number[]> = { webrtc: [], webrtc_jb_default: [], raw: [], jpeg: [] };
    const psnrs: number[] = [];
    for (let round = 0; round < (o.quick ? 2 : 3); round++) {
      for (const phase of PHASES) {
        await use(page, phase);
        await sleep(500);
        const jb0 = phase.startsWith('webrtc') ? await jitterOf(page) : null;
        await page.evaluate((p) => Object.assign((globalThis as unknown as { __rtc: { phase: string; samples: unknown[]; raw: unknown[] } }).__rtc, { phase: p, samples: [], raw: [] }), phase);
        await sleep(o.phaseMs);
        const got = await page.evaluate(() => {
          const r = (globalThis as unknown as { __rtc: { phase: string; samples: [number, number][]; raw: [number, number][]; pictures: [number, string][] } }).__rtc;
          r.phase = 'off';
          const out = { samples: r.samples, raw: r.raw, pictures: r.pictures };
          r.pictures = [];
          return out;
        });
        if (jb0) {
          const [delay, emitted] = await jitterOf(page);
          if (emitted > jb0[1]) jitterBy[phase].push(((delay - jb0[0]) / (emitted - jb0[1])) * 1000);
        }
        const samples = phase.startsWith('webrtc') ? got.samples : got.raw;
        let matched = 0;
        for (const [seq, at] of samples) {
          const e = emitted.get(seq);
          if (!e) continue;
          const ms = at - e.t;
          if (ms >= 0 && ms < 2000) {
            lat[phase].push(ms);
            matched++;
          }
        }
        fpsBy[phase].push((samples.length * 1000) / o.phaseMs);
        for (const [seq, b64] of got.pictures) {
          const e = emitted.get(seq);
          if (e?.copy) psnrs.push(psnr(e.copy, new Uint8Array(Buffer.from(b64, 'base64')), 256, 256, 4));
        }
        process.stderr.write(`  chromium ${phase} round ${round + 1}: ${samples.length} frames presented, ${matched} matched, p50 ${pct(lat[phase], 50).toFixed(1)} ms\n`);
      }
    }
    // Command → first presented frame that shows it (an empty field shows the palette's
    // background everywhere, so a palette switch is visible in its first frame), in alternating
    // blocks: WebRTC (jitter buffer 0, then Chromium's default), then Socket.IO raw, again and
    // again. Blocks of CLICK_BLOCK trials after a second to settle: the jitter buffer adapts to
    // a new target over some frames, not at once.
    await use(page, 'webrtc');
    await page.evaluate(() => (globalThis as unknown as { framehost: { client: { command(n: string, a: object): Promise<unknown> } } }).framehost.client.command('clear', {}));
    await sleep(500);
    const clicks: Record<ClickPhase, number[]> = { webrtc: [], webrtc_jb_default: [], raw: [] };
    let switches = 0;
    for (let block = 0; block < (o.quick ? 2 : 4); block++) {
      for (const phase of CLICK_PHASES) {
        await use(page, phase);
        await sleep(1000);
        for (let i = 0; i < CLICK_BLOCK; i++) {
          const name: PaletteName = switches++ % 2 === 0 ? 'ember' : 'ocean';
          const rgb = [...paletteBytes(name).subarray(255 * 4, 255 * 4 + 3)];
          const via = phase === 'raw' ? 'socket' : 'webrtc';
          const ms = await page.evaluate(
            async ({ name, rgb, via }) => {
              const w = globalThis as unknown as { framehost: { client: { command(n: string, a: object): Promise<unknown> } }; __rtc: { click: { rgb: number[]; via: string; t1: number | null } | null } };
              const click = { rgb, via, t1: null as number | null };
              w.__rtc.click = click;
              const t0 = performance.timeOrigin + performance.now();
              await w.framehost.client.command('palette', { name });
              for (let k = 0; k < 200 && click.t1 === null; k++) await new Promise((r) => setTimeout(r, 10));
              w.__rtc.click = null;
              return click.t1 === null ? -1 : click.t1 - t0;
            },
            { name, rgb, via },
          );
          if (ms >= 0) clicks[phase].push(ms);
          await sleep(50);
        }
      }
    }
    await context.close();
    const row = (k: Phase) => ({ p50_ms: r2(pct(lat[k], 50)), p99_ms: r2(pct(lat[k], 99)), presented_fps: r2(median(fpsBy[k])), samples: lat[k].length, ...(k.startsWith('webrtc') ? { jitter_buffer_ms: r2(median(jitterBy[k])) } : {}) });
    const clickRow = (k: ClickPhase) => ({ p50: r2(pct(clicks[k], 50)), p99: r2(pct(clicks[k], 99)), trials: clicks[k].length });
    return {
      size: 256,
      model_fps: 60,
      glass_to_glass: { webrtc: row('webrtc'), webrtc_jb_default: row('webrtc_jb_default'), raw: row('raw'), jpeg: row('jpeg') },
      command_to_frame_ms: { webrtc: clickRow('webrtc'), webrtc_jb_default: clickRow('webrtc_jb_default'), raw: clickRow('raw') },
      psnr_db: { median: r2(median(psnrs)), min: r2(Math.min(...psnrs)), frames: psnrs.length },
      start_to_first_frame_ms: { fresh_page_p50: r2(median(firstFresh)), fresh_page_max: r2(Math.max(...firstFresh)), peer_up_p50: r2(median(firstWarm)), peer_up_max: r2(Math.max(...firstWarm)) },
    };
  } finally {
    await browser.close();
    await w.close();
  }
}

function commandMarkdown(c: Awaited<ReturnType<typeof chromiumSection>>['command_to_frame_ms']): string {
  return `Command (palette switch) → first presented frame that shows it, in alternating blocks of ${CLICK_BLOCK}: WebRTC p50 ${c.webrtc.p50} ms, p99 ${c.webrtc.p99} ms (${c.webrtc.trials} trials); WebRTC with Chromium's default jitter buffer p50 ${c.webrtc_jb_default.p50}, p99 ${c.webrtc_jb_default.p99} (${c.webrtc_jb_default.trials}); Socket.IO raw (the page's canvas at the next animation frame) p50 ${c.raw.p50}, p99 ${c.raw.p99} (${c.raw.trials}).`;
}

export async function runWebRtcBench(o: RtcBenchOptions) {
  const viewers: Viewers = new ChildRpc(new URL('./webrtc-client.ts', import.meta.url));
  const throughputs = [];
  for (const size of o.sizes) throughputs.push(await throughput(o, size, viewers));
  process.stderr.write('  webrtc cost at 60 fps…\n');
  const paced = [];
  for (const size of o.sizes) paced.push(await pacedCost(o, size, viewers));
  process.stderr.write('  webrtc spectators…\n');
  const spect = await spectators(o, viewers);
  await viewers.close();
  process.stderr.write('  webrtc in Chromium…\n');
  const browser = await chromiumSection(o);
  const result = { throughput: throughputs, paced60: paced, spectators: spect, chromium: browser };
  const g = browser.glass_to_glass;
  const markdown = `
| WebRTC, one viewer (own process) | bare fps | model fps with the viewer (÷ bare) | frames received (÷ bare) |
|---|---|---|---|
${throughputs.map((t) => `| ${t.size}² | ${t.bare_fps} | ${t.model_fps} (${t.model_ratio}) | ${t.received_fps} (${t.received_ratio}) |`).join('\n')}

| WebRTC at 60 fps | process CPU ms/frame, no viewer | with one viewer | WebRTC ms/frame | received fps | Mbit/s |
|---|---|---|---|---|---|
${paced.map((p) => `| ${p.size}² | ${p.cpu_ms_per_frame_alone} | ${p.cpu_ms_per_frame_webrtc} | ${p.webrtc_ms_per_frame} | ${p.received_fps} | ${p.mbit_s} |`).join('\n')}

| spectators (256², broadcast) | model fps | slowest spectator fps | median spectator fps | process CPU ms/frame |
|---|---|---|---|---|
${Object.entries(spect).map(([k, v]) => `| ${k.replace('_', ', ×')} | ${v.model_fps} | ${v.min_received_fps} | ${v.median_received_fps} | ${v.cpu_ms_per_frame} |`).join('\n')}

| Chromium, 256², model at 60 fps | p50 ms | p99 ms | presented fps |
|---|---|---|---|
| WebRTC: emit → requestVideoFrameCallback (jitterBufferTarget 0, the page's; receiver's jitter buffer ${g.webrtc.jitter_buffer_ms} ms) | ${g.webrtc.p50_ms} | ${g.webrtc.p99_ms} | ${g.webrtc.presented_fps} |
| WebRTC, the same with Chromium's default jitter buffer (target null; ${g.webrtc_jb_default.jitter_buffer_ms} ms) | ${g.webrtc_jb_default.p50_ms} | ${g.webrtc_jb_default.p99_ms} | ${g.webrtc_jb_default.presented_fps} |
| Socket.IO raw: emit → next animation frame | ${g.raw.p50_ms} | ${g.raw.p99_ms} | ${g.raw.presented_fps} |
| Socket.IO JPEG: emit → next animation frame | ${g.jpeg.p50_ms} | ${g.jpeg.p99_ms} | ${g.jpeg.presented_fps} |

PSNR of ${browser.psnr_db.frames} frames read back from the <video>: median ${browser.psnr_db.median} dB, min ${browser.psnr_db.min} dB.
${commandMarkdown(browser.command_to_frame_ms)}
Start → first presented frame: fresh page (negotiation included) p50 ${browser.start_to_first_frame_ms.fresh_page_p50} ms (max ${browser.start_to_first_frame_ms.fresh_page_max}); peer already up p50 ${browser.start_to_first_frame_ms.peer_up_p50} ms (max ${browser.start_to_first_frame_ms.peer_up_max}).`;
  return { result, markdown };
}

// `node --import tsx bench/webrtc.ts [--quick]`: the Chromium part alone, for a focused run
// (glass-to-glass, jitter buffer 0 vs default, command → frame); `npm run bench` runs it all.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  const browser = await chromiumSection({ quick, phaseMs: quick ? 1000 : 2000, threads: Number(process.env.FRAMEHOST_ORT_THREADS) || undefined });
  const g = browser.glass_to_glass;
  process.stdout.write(`${JSON.stringify(browser, null, 2)}\n`);
  process.stdout.write(`
| Chromium, 256², model at 60 fps | p50 ms | p99 ms | presented fps | jitter buffer ms |
|---|---|---|---|---|
${(['webrtc', 'webrtc_jb_default', 'raw', 'jpeg'] as const).map((k) => `| ${k} | ${g[k].p50_ms} | ${g[k].p99_ms} | ${g[k].presented_fps} | ${'jitter_buffer_ms' in g[k] ? String(g[k].jitter_buffer_ms) : ''} |`).join('\n')}

${commandMarkdown(browser.command_to_frame_ms)}
`);
  process.exit(0); // wrtc 0.10 can crash at a natural exit after video tracks existed (README)
}

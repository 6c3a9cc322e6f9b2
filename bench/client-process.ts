/**
 * The benchmark's client, in its own process (as a real viewer would be): one or more
 * socket.io-clients over loopback, driven by the orchestrator over IPC. It measures what a
 * user sees: frames received, emit → receive latency, command → reflecting frame, start →
 * first frame, stop acknowledged → next session's first frame.
 */
import { FramehostClient, type ClientFrame } from '../src/client/client.ts';
import type { Encoding } from '../src/transport/socket/events.ts';
import { paletteBytes, type PaletteName } from '../src/models/gray-scott/palettes.ts';
import { answerRequests } from './child-rpc.ts';

export type ClientRequest =
  | { type: 'connect'; url: string; clients: number }
  | { type: 'start'; encoding: Encoding }
  | { type: 'stop' }
  | { type: 'window'; ms: number }
  | { type: 'commandLatency'; trials: number }
  | { type: 'switchLatency'; trials: number }
  | { type: 'close' };

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let clients: FramehostClient[] = [];
let viewer: FramehostClient | undefined;
let onFrame: ((f: ClientFrame, at: number) => void) | undefined;

/** Arm before the request that causes the frame (a frame may arrive in the same tick as its ack). */
function frameWaiter(predicate: (f: ClientFrame) => boolean, timeoutMs = 10_000): { at: Promise<number>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const at = new Promise<number>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error('no matching frame')), timeoutMs);
    onFrame = (f, t) => {
      if (!predicate(f)) return;
      clearTimeout(timer);
      onFrame = undefined;
      resolve(t);
    };
  });
  return {
    at,
    cancel() {
      clearTimeout(timer);
      onFrame = undefined;
      at.catch(() => undefined);
    },
  };
}

async function startAndFirstFrame(encoding: Encoding): Promise<number> {
  const v = viewer!;
  const t0 = now();
  let sessionId = '';
  const first = frameWaiter((f) => f.meta.sessionId === sessionId || sessionId === '');
  sessionId = (await v.start({ encoding })).sessionId;
  return (await first.at) - t0;
}

async function waitIdle(): Promise<void> {
  for (;;) {
    const caps = await viewer!.capabilities();
    if (caps.state === 'idle') return;
    await sleep(1);
  }
}

async function handle(m: ClientRequest): Promise<unknown> {
  switch (m.type) {
    case 'connect': {
      for (const c of clients) c.close();
      clients = await Promise.all(Array.from({ length: m.clients }, () => FramehostClient.connect(m.url, { reconnection: false })));
      viewer = clients[0]!;
      viewer.onFrame((f) => onFrame?.(f, now()));
      return { ok: true };
    }
    case 'start':
      return { firstFrameMs: await startAndFirstFrame(m.encoding) };
    case 'stop': {
      const ended = new Promise((r) => viewer!.on('session:ended', r));
      await viewer!.stop();
      await ended;
      await waitIdle();
      return { ok: true };
    }
    case 'window': {
      let frames = 0;
      let bytes = 0;
      const latencies: number[] = [];
      onFrame = (f, at) => {
        frames += f.meta.count;
        bytes += f.data.byteLength;
        latencies.push(at - f.meta.t);
      };
      const t0 = performance.now();
      await sleep(m.ms);
      onFrame = undefined;
      return { frames, bytes, ms: performance.now() - t0, latencies };
    }
    case 'commandLatency': {
      // An empty field stays empty (U=1, V=0 is a fixed point), so pixel 0 shows the
      // palette's background colour: a palette switch is visible in the first frame after it.
      await viewer!.command('clear');
      await sleep(50);
      const samples: number[] = [];
      for (let i = 0; i < m.trials; i++) {
        const name: PaletteName = i % 2 === 0 ? 'ember' : 'ocean';
        const bg = paletteBytes(name).subarray(255 * 4, 255 * 4 + 3);
        const seen = frameWaiter((f) => f.data[0] === bg[0] && f.data[1] === bg[1] && f.data[2] === bg[2]);
        const t0 = now();
        await viewer!.command('palette', { name });
        samples.push((await seen.at) - t0);
        await sleep(5);
      }
      return { samples };
    }
    case 'switchLatency': {
      const samples: number[] = [];
      for (let i = 0; i < m.trials; i++) {
        const ended = new Promise((r) => viewer!.on('session:ended', r));
        await viewer!.stop();
        const t0 = now(); // stop acknowledged
        await ended;
        let started = false;
        while (!started) {
          const first = frameWaiter(() => true);
          try {
            await viewer!.start({ encoding: 'raw' });
          } catch {
            first.cancel(); // busy: cleanup not finished yet; try again at once
            await sleep(0.5);
            continue;
          }
          started = true;
          samples.push((await first.at) - t0);
        }
      }
      return { samples };
    }
    case 'close':
      for (const c of clients) c.close();
      setTimeout(() => process.exit(0), 10);
      return { ok: true };
  }
}

answerRequests<ClientRequest>(handle);

/**
 * The WebRTC bench's viewers, in their own process (as real viewers would be): n framehost
 * clients, each with a libwebrtc peer (@roamhq/wrtc) that receives the server's track and
 * counts decoded frames; driven by bench/webrtc.ts over IPC. The first client owns the session.
 */
import { FramehostClient } from '../src/client/client.ts';
import { connectViewer, type NodeViewer } from '../test/helpers/webrtc.ts';
import { answerRequests } from './child-rpc.ts';

export type RtcClientRequest =
  | { type: 'open'; url: string; viewers: number }
  | { type: 'start' }
  | { type: 'attach' }
  | { type: 'stop' }
  | { type: 'window'; ms: number }
  | { type: 'close' };

export interface RtcWindow {
  readonly ms: number;
  /** Frames decoded per viewer in the window, and those of them whose luma changed from the one before. */
  readonly frames: number[];
  readonly changed: number[];
  /** Video bytes received per viewer in the window. */
  readonly bytes: number[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let clients: FramehostClient[] = [];
let viewers: NodeViewer[] = [];

async function bytesReceived(v: NodeViewer): Promise<number> {
  let bytes = 0;
  for (const s of (await v.pc.getStats()).values()) if (s.type === 'inbound-rtp' && s.kind === 'video') bytes += Number(s.bytesReceived ?? 0);
  return bytes;
}

async function closeAll(): Promise<void> {
  for (const v of viewers) v.close();
  for (const c of clients) c.close();
  viewers = [];
  clients = [];
  await sleep(50);
}

async function handle(m: RtcClientRequest): Promise<unknown> {
  switch (m.type) {
    case 'open': {
      await closeAll();
      clients = await Promise.all(Array.from({ length: m.viewers }, () => FramehostClient.connect(m.url, { reconnection: false })));
      for (const c of clients) viewers.push(await connectViewer(c));
      return { ok: true };
    }
    case 'start': {
      await clients[0]!.start({ encoding: 'webrtc' });
      for (const c of clients.slice(1)) await c.attach({ encoding: 'webrtc' });
      return { ok: true };
    }
    case 'attach': {
      // Spectators of a session another process owns.
      for (const c of clients) await c.attach({ encoding: 'webrtc' });
      return { ok: true };
    }
    case 'stop': {
      const ended = new Promise((r) => clients[0]!.on('session:ended', r));
      await clients[0]!.stop();
      await ended;
      for (;;) {
        if ((await clients[0]!.capabilities()).state === 'idle') break;
        await sleep(1);
      }
      return { ok: true };
    }
    case 'window': {
      const f0 = viewers.map((v) => v.frames);
      const c0 = viewers.map((v) => v.changed);
      const b0 = await Promise.all(viewers.map(bytesReceived));
      const t0 = performance.now();
      await sleep(m.ms);
      const frames = viewers.map((v, i) => v.frames - f0[i]!);
      const changed = viewers.map((v, i) => v.changed - c0[i]!);
      const ms = performance.now() - t0;
      const b1 = await Promise.all(viewers.map(bytesReceived));
      return { ms, frames, changed, bytes: b1.map((b, i) => b - b0[i]!) } satisfies RtcWindow;
    }
    case 'close':
      await closeAll();
      // process.exit: libwebrtc's teardown at a natural exit crashes (wrtc 0.10, Linux).
      setTimeout(() => process.exit(0), 10);
      return { ok: true };
  }
}

answerRequests<RtcClientRequest>(handle);

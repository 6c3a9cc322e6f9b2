/**
 * A framehost server in a process of its own, for the room bench (bench/room.ts): the room sender
 * (node-datachannel) and the wrtc sender (libwebrtc) were not cleared to share a process, so each
 * sender's server runs in its own child, and each measures its own process CPU per frame. Viewers
 * (other children) drive its sessions over Socket.IO; `run` starts a session with no viewer (the
 * baseline the viewers' cost is taken against).
 */
import { measure, untilIdle, world, type World } from './webrtc.ts';
import type { TransportOptions } from '../src/transport/options.ts';
import { answerRequests } from './child-rpc.ts';

export type ServerRequest =
  | { type: 'open'; size: number; fps: number; threads?: number; transport: Partial<TransportOptions> }
  | { type: 'run'; on: boolean }
  | { type: 'measure'; ms: number }
  | { type: 'close' };

export interface ServerWindow {
  readonly fps: number;
  readonly cpuMsPerFrame: number;
  readonly frames: number;
}

let w: World | null = null;

async function handle(m: ServerRequest): Promise<unknown> {
  switch (m.type) {
    case 'open':
      await w?.close();
      w = await world(m.size, m.fps, m.threads, m.transport);
      return { url: w.server.url };
    case 'run':
      if (m.on) w!.rt.start();
      else {
        w!.rt.stop();
        await untilIdle(w!.rt);
      }
      return { ok: true };
    case 'measure': {
      const r = await measure(w!.rt, m.ms);
      return { fps: r.fps, cpuMsPerFrame: r.cpuMsPerFrame, frames: r.frames } satisfies ServerWindow;
    }
    case 'close':
      await w?.close();
      // As the viewers' processes do: libwebrtc's teardown at a natural exit can crash (wrtc 0.10).
      setTimeout(() => process.exit(0), 10);
      return { ok: true };
  }
}

answerRequests<ServerRequest>(handle);

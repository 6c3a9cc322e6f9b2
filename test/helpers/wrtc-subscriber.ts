/**
 * A Janus subscriber's media end: libwebrtc (@roamhq/wrtc) in a process of its own (the test's
 * process runs node-datachannel; the two were not cleared to share one). Janus offers; `answer`
 * answers with this process's host candidates on the allowed address only, and decoded frames
 * are counted, with how many differ from the one before (the session's picture changes).
 * Driven over IPC (bench/child-rpc.ts).
 */
import { createHash } from 'node:crypto';
import { candidateAllowed } from '../../src/transport/webrtc/options.ts';
import { isWrtc, loadWrtc, type Wrtc, type WrtcPeerConnection, type WrtcVideoSink } from '../../src/transport/webrtc/wrtc.ts';
import { answerRequests } from '../../bench/child-rpc.ts';

export type SubscriberRequest = { type: 'answer'; offer: string; address: string } | { type: 'stats' } | { type: 'close' };

export interface SubscriberStats {
  readonly frames: number;
  /** Frames whose luma differs from the frame before. */
  readonly changed: number;
  readonly width: number;
  readonly height: number;
}

class Subscriber {
  frames = 0;
  changed = 0;
  width = 0;
  height = 0;
  lastHash = '';
  sink: WrtcVideoSink | null = null;
  constructor(readonly pc: WrtcPeerConnection) {}

  see(frame: { width: number; height: number; data: Uint8Array }): void {
    this.frames++;
    this.width = frame.width;
    this.height = frame.height;
    const hash = createHash('sha1').update(frame.data.subarray(0, frame.width * frame.height)).digest('hex');
    if (hash !== this.lastHash) this.changed++;
    this.lastHash = hash;
  }
}

function libwebrtc(): Wrtc {
  const loaded = loadWrtc();
  if (!isWrtc(loaded)) throw new Error(loaded.message);
  return loaded;
}
const w = libwebrtc();
const subscribers: Subscriber[] = [];

async function answer(offer: string, address: string): Promise<string> {
  const pc = new w.RTCPeerConnection({ iceServers: [] });
  const s = new Subscriber(pc);
  subscribers.push(s);
  pc.ontrack = ({ track }) => {
    s.sink = new w.nonstandard.RTCVideoSink(track);
    s.sink.onframe = ({ frame }) => s.see(frame);
  };
  const lines: string[] = [];
  const done = new Promise<void>((resolve) => {
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate) return resolve();
      if (candidateAllowed(candidate.candidate, [address]) && / udp /i.test(candidate.candidate)) lines.push(`a=${candidate.candidate}`);
    };
  });
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  const a = await pc.createAnswer();
  await pc.setLocalDescription(a);
  await Promise.race([done, new Promise((r) => setTimeout(r, 1000))]);
  return `${a.sdp.trimEnd()}\r\n${lines.join('\r\n')}\r\na=end-of-candidates\r\n`;
}

async function handle(m: SubscriberRequest): Promise<unknown> {
  switch (m.type) {
    case 'answer':
      return answer(m.offer, m.address);
    case 'stats':
      return subscribers.map((s): SubscriberStats => ({ frames: s.frames, changed: s.changed, width: s.width, height: s.height }));
    case 'close':
      for (const s of subscribers) {
        s.sink?.stop();
        s.pc.close();
      }
      // process.exit: libwebrtc's teardown at a natural exit crashes (wrtc 0.10, Linux).
      setTimeout(() => process.exit(0), 10);
      return null;
  }
}

answerRequests<SubscriberRequest>(handle);

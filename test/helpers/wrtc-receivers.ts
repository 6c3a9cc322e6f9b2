/**
 * libwebrtc viewers (@roamhq/wrtc) in a process of their own, for tests of src/media/, whose
 * process runs node-datachannel: the two libraries were not cleared to share a process. Driven
 * over IPC (bench/child-rpc.ts): each `offer` makes a receive-only peer whose offer carries its
 * loopback host candidates only; `answer` applies the room's answer; `stats` reports per viewer.
 */
import { candidateAllowed } from '../../src/transport/webrtc/options.ts';
import { isWrtc, loadWrtc, type Wrtc, type WrtcPeerConnection, type WrtcVideoSink } from '../../src/transport/webrtc/wrtc.ts';
import { answerRequests } from '../../bench/child-rpc.ts';

export type ReceiversRequest = { type: 'offer' } | { type: 'answer'; index: number; sdp: string } | { type: 'stats' } | { type: 'close' };

export interface ReceiverStats {
  /** Frames decoded, and ms from making the offer to the first one (null: none yet). */
  readonly frames: number;
  readonly firstFrameMs: number | null;
  readonly keyFramesDecoded: number;
  readonly pliSent: number;
  readonly width: number;
  readonly height: number;
}

class Receiver {
  frames = 0;
  firstFrameAt: number | null = null;
  width = 0;
  height = 0;
  sink: WrtcVideoSink | null = null;
  constructor(
    readonly pc: WrtcPeerConnection,
    readonly offeredAt: number,
  ) {}
}

function libwebrtc(): Wrtc {
  const loaded = loadWrtc();
  if (!isWrtc(loaded)) throw new Error(loaded.message);
  return loaded;
}
const w = libwebrtc();
const receivers: Receiver[] = [];

/** Gather, keep the loopback host candidates, and put them in the offer (the room does not trickle). */
async function offer(): Promise<{ index: number; sdp: string }> {
  const offeredAt = performance.now();
  const pc = new w.RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver('video', { direction: 'recvonly' });
  const lines: string[] = [];
  const done = new Promise<void>((resolve) => {
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate) return resolve();
      if (candidateAllowed(candidate.candidate, ['127.0.0.1']) && / udp /i.test(candidate.candidate)) lines.push(`a=${candidate.candidate}`);
    };
  });
  const o = await pc.createOffer();
  await pc.setLocalDescription(o);
  await Promise.race([done, new Promise((r) => setTimeout(r, 1000))]);
  const sdp = `${o.sdp.trimEnd()}\r\n${lines.join('\r\n')}\r\na=end-of-candidates\r\n`;
  receivers.push(new Receiver(pc, offeredAt));
  return { index: receivers.length - 1, sdp };
}

async function answer(index: number, sdp: string): Promise<void> {
  const r = receivers[index]!;
  await r.pc.setRemoteDescription({ type: 'answer', sdp });
  const sink = new w.nonstandard.RTCVideoSink(r.pc.getTransceivers()[0]!.receiver.track);
  r.sink = sink;
  sink.onframe = ({ frame }) => {
    r.frames++;
    r.firstFrameAt ??= performance.now();
    r.width = frame.width;
    r.height = frame.height;
  };
}

async function stats(): Promise<ReceiverStats[]> {
  return Promise.all(
    receivers.map(async (r) => {
      let keyFramesDecoded = 0;
      let pliSent = 0;
      for (const s of (await r.pc.getStats()).values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          keyFramesDecoded += Number(s.keyFramesDecoded ?? 0);
          pliSent += Number(s.pliCount ?? 0);
        }
      }
      return { frames: r.frames, firstFrameMs: r.firstFrameAt === null ? null : r.firstFrameAt - r.offeredAt, keyFramesDecoded, pliSent, width: r.width, height: r.height };
    }),
  );
}

async function handle(m: ReceiversRequest): Promise<unknown> {
  switch (m.type) {
    case 'offer':
      return offer();
    case 'answer':
      return answer(m.index, m.sdp);
    case 'stats':
      return stats();
    case 'close':
      for (const r of receivers) {
        r.sink?.stop();
        r.pc.close();
      }
      // process.exit: libwebrtc's teardown at a natural exit crashes (wrtc 0.10, Linux).
      setTimeout(() => process.exit(0), 10);
      return null;
  }
}

answerRequests<ReceiversRequest>(handle);

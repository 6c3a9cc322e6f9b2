/**
 * The child process of test/helpers/viewers.ts: libwebrtc viewers (@roamhq/wrtc) playing the page's
 * part, kept out of the test's process so that its server may run either sender (the room sender
 * loads node-datachannel, and the two libraries were not cleared to share a process). The test's
 * process keeps the Socket.IO connection and does the signalling; this process makes each peer's
 * offer, trickles its loopback host candidates back (events), applies the answer and the server's
 * candidates, and tells every decoded frame's count (events). Driven over IPC (bench/child-rpc.ts).
 */
import { candidateAllowed } from '../../src/transport/webrtc/options.ts';
import { isWrtc, loadWrtc, type Wrtc, type WrtcPeerConnection, type WrtcVideoSink } from '../../src/transport/webrtc/wrtc.ts';
import type { WebRtcCandidate } from '../../src/transport/webrtc/wire.ts';
import { answerRequests, tell } from '../../bench/child-rpc.ts';

export type ViewersRequest =
  | { type: 'offer'; camera: boolean }
  | { type: 'answer'; index: number; sdp: string }
  | { type: 'candidate'; index: number; candidate: WebRtcCandidate }
  | { type: 'last'; index: number }
  | { type: 'stats'; index: number }
  | { type: 'sdp'; direction: 'recvonly' | 'sendonly' }
  | { type: 'drop'; index: number }
  | { type: 'close' };

/** Events this process tells: a local candidate of peer `index`, or its decoded frames so far. */
export type ViewersEvent = { event: 'candidate'; index: number; candidate: WebRtcCandidate } | { event: 'frames'; index: number; frames: number };

/** The last decoded frame (I420), its bytes in base64 (IPC carries JSON). */
export interface LastFrame {
  readonly width: number;
  readonly height: number;
  readonly data: string;
}

const LOOPBACK = ['127.0.0.1'];
/** The fake camera's picture and rate (a 256² frame every 50 ms, its luma a moving level). */
const CAMERA = { size: 256, everyMs: 50 };

function libwebrtc(): Wrtc {
  const loaded = loadWrtc();
  if (!isWrtc(loaded)) throw new Error(loaded.message);
  return loaded;
}
const w = libwebrtc();

class Viewer {
  frames = 0;
  last: { width: number; height: number; data: Uint8Array } | null = null;
  sink: WrtcVideoSink | null = null;
  stopCamera: (() => void) | null = null;
  constructor(readonly pc: WrtcPeerConnection) {}

  close(): void {
    this.sink?.stop();
    this.stopCamera?.();
    this.pc.close();
  }
}
const viewers = new Map<number, Viewer>();
let next = 0;

/** A camera as a page would send it: a source pushing frames whose luma changes. */
function camera(v: Viewer): ReturnType<InstanceType<Wrtc['nonstandard']['RTCVideoSource']>['createTrack']> {
  const source = new w.nonstandard.RTCVideoSource();
  const track = source.createTrack();
  const { size } = CAMERA;
  const i420 = { width: size, height: size, data: new Uint8Array(size * size * 1.5).fill(128) };
  let n = 0;
  const timer = setInterval(() => {
    i420.data.fill(n++ % 200, 0, size * size);
    source.onFrame(i420);
  }, CAMERA.everyMs);
  v.stopCamera = () => (clearInterval(timer), track.stop());
  return track;
}

async function offer(withCamera: boolean): Promise<{ index: number; sdp: string }> {
  const index = next++;
  const pc = new w.RTCPeerConnection({ iceServers: [] });
  const v = new Viewer(pc);
  viewers.set(index, v);
  pc.addTransceiver('video', { direction: 'recvonly' });
  if (withCamera) pc.addTransceiver(camera(v), { direction: 'sendonly' });
  pc.onicecandidate = ({ candidate }) => {
    // Like the server, the viewer signals only its loopback host candidates: media stays on 127.0.0.1.
    if (!candidate || !candidateAllowed(candidate.candidate, LOOPBACK)) return;
    tell({ event: 'candidate', index, candidate: { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex } });
  };
  const o = await pc.createOffer();
  await pc.setLocalDescription(o);
  return { index, sdp: o.sdp };
}

async function answer(index: number, sdp: string): Promise<void> {
  const v = viewers.get(index);
  if (!v) throw new Error(`no viewer ${index}`);
  await v.pc.setRemoteDescription({ type: 'answer', sdp });
  const sink = new w.nonstandard.RTCVideoSink(v.pc.getTransceivers()[0]!.receiver.track);
  v.sink = sink;
  sink.onframe = ({ frame }) => {
    v.frames++;
    v.last = { width: frame.width, height: frame.height, data: frame.data };
    tell({ event: 'frames', index, frames: v.frames });
  };
}

/** An offer nobody answers (the bad-input tests send it as it is, or mangled). */
async function throwawaySdp(direction: 'recvonly' | 'sendonly'): Promise<string> {
  const pc = new w.RTCPeerConnection({ iceServers: [] });
  const source = new w.nonstandard.RTCVideoSource();
  const track = direction === 'sendonly' ? source.createTrack() : null;
  if (track) pc.addTransceiver(track, { direction });
  else pc.addTransceiver('video', { direction });
  const sdp = (await pc.createOffer()).sdp;
  pc.close();
  track?.stop();
  return sdp;
}

async function handle(m: ViewersRequest): Promise<unknown> {
  switch (m.type) {
    case 'offer':
      return offer(m.camera);
    case 'answer':
      return answer(m.index, m.sdp);
    case 'candidate':
      // A candidate the viewer cannot use is the server's problem to show, not the viewer's to throw.
      await viewers.get(m.index)?.pc.addIceCandidate(m.candidate).catch(() => undefined);
      return null;
    case 'last': {
      const last = viewers.get(m.index)?.last;
      return last ? ({ width: last.width, height: last.height, data: Buffer.from(last.data).toString('base64') } satisfies LastFrame) : null;
    }
    case 'stats':
      // Plain objects: what libwebrtc's getStats reports for this peer.
      return [...((await viewers.get(m.index)?.pc.getStats())?.values() ?? [])].map((s) => ({ ...s }));
    case 'sdp':
      return throwawaySdp(m.direction);
    case 'drop':
      viewers.get(m.index)?.close();
      viewers.delete(m.index);
      return null;
    case 'close':
      for (const v of viewers.values()) v.close();
      viewers.clear();
      // process.exit: libwebrtc's teardown at a natural exit crashes (wrtc 0.10, Linux).
      setTimeout(() => process.exit(0), 10);
      return null;
  }
}

answerRequests<ViewersRequest>(handle);

/**
 * A WebRTC viewer in Node (libwebrtc through @roamhq/wrtc), playing the browser's part over a
 * real framehost connection: it offers to receive video (and optionally to send a track), trickles
 * candidates both ways, and records the frames it decodes.
 */
import { isWrtc, loadWrtc, type Wrtc, type WrtcPeerConnection, type WrtcTrack, type WrtcVideoSink } from '../../src/transport/webrtc/wrtc.ts';
import type { FramehostClient } from '../../src/client/client.ts';
import type { Result } from '../../src/errors.ts';
import type { WebRtcCandidate } from '../../src/transport/webrtc/wire.ts';
import { candidateAllowed } from '../../src/transport/webrtc/options.ts';
import { LOOPBACK } from './server.ts';

export function wrtc(): Wrtc {
  const w = loadWrtc();
  if (!isWrtc(w)) throw new Error(w.message);
  return w;
}

export interface NodeViewer {
  readonly pc: WrtcPeerConnection;
  readonly peerId: string;
  /** The offer it made (pc.localDescription is not safe to read in wrtc: see src/transport/webrtc/peer.ts). */
  readonly offer: string;
  /** Decoded frames so far, those whose luma differs from the frame before, and the last one (I420). */
  frames: number;
  changed: number;
  last: { width: number; height: number; data: Uint8Array } | null;
  close(): void;
}

/** An offer SDP for a receive-only video peer (and a send section if `send` is given). */
export async function makeOffer(w: Wrtc, send?: WrtcTrack): Promise<{ pc: WrtcPeerConnection; sdp: string }> {
  const pc = new w.RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver('video', { direction: 'recvonly' });
  if (send) pc.addTransceiver(send, { direction: 'sendonly' });
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  return { pc, sdp: offer.sdp };
}

export async function connectViewer(client: FramehostClient, options: { send?: WrtcTrack; inputTrack?: string } = {}): Promise<NodeViewer> {
  const w = wrtc();
  const { pc, sdp } = await makeOffer(w, options.send);
  const pending: { candidate: string; sdpMid: string | null; sdpMLineIndex: number | null }[] = [];
  let peerId: string | null = null;
  pc.onicecandidate = ({ candidate }) => {
    // Like the server, the viewer offers only its loopback host candidates: media stays on 127.0.0.1.
    if (!candidate || !candidateAllowed(candidate.candidate, LOOPBACK)) return;
    const c = { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex };
    if (peerId) void client.request('webrtc:candidate', { peerId, candidate: c });
    else pending.push(c);
  };
  // The server trickles candidates as soon as it has answered, before the answer's ack arrives:
  // keep them until the answer is applied (dropping them left the viewer to find the server by
  // peer-reflexive candidates alone).
  const early: { peerId: string; candidate: WebRtcCandidate }[] = [];
  let answered = false;
  const offFromServer = client.on('webrtc:candidate', ({ peerId: id, candidate }) => {
    if (!candidate) return;
    if (!answered) early.push({ peerId: id, candidate });
    else if (id === peerId) void pc.addIceCandidate(candidate).catch(() => undefined);
  });
  const r = (await client.request('webrtc:offer', { sdp, ...(options.inputTrack ? { inputTrack: options.inputTrack } : {}) })) as Result<{ peerId: string; sdp: string }>;
  if (!r.ok) {
    pc.close();
    offFromServer();
    throw new Error(`offer refused: ${r.error.code}: ${r.error.message}`);
  }
  peerId = r.peerId;
  await pc.setRemoteDescription({ type: 'answer', sdp: r.sdp });
  answered = true;
  for (const e of early.splice(0)) if (e.peerId === peerId) void pc.addIceCandidate(e.candidate).catch(() => undefined);
  for (const c of pending.splice(0)) void client.request('webrtc:candidate', { peerId, candidate: c });
  let sink: WrtcVideoSink | null = null;
  const viewer: NodeViewer = {
    pc,
    peerId,
    offer: sdp,
    frames: 0,
    changed: 0,
    last: null,
    close() {
      offFromServer();
      sink?.stop();
      pc.close();
    },
  };
  const receiver = pc.getTransceivers()[0]!.receiver;
  sink = new w.nonstandard.RTCVideoSink(receiver.track);
  sink.onframe = ({ frame }) => {
    viewer.frames++;
    const luma = frame.width * frame.height;
    const before = viewer.last;
    // A stream that repeats one picture decodes the same luma again: those frames are not "changed".
    if (!before || before.width !== frame.width || Buffer.compare(before.data.subarray(0, luma), frame.data.subarray(0, luma)) !== 0) viewer.changed++;
    viewer.last = { width: frame.width, height: frame.height, data: frame.data.slice() };
  };
  return viewer;
}

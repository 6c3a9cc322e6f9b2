/**
 * The page's WebRTC side: a peer connection to the server, negotiated over the page's Socket.IO
 * connection (the page offers, the server answers in the ack, candidates trickle both ways).
 * The server's video track plays in a hidden <video>; every presented frame is handed to the
 * page (requestVideoFrameCallback), which draws it on the canvas it already shows.
 *
 * The camera can go the other way on the same peer (a renegotiation adds a send section).
 */
import type { FramehostClient } from '../client.ts';
import type { Result } from '../../errors.ts';
import type { PeerCloseReason, WebRtcConfig } from '../webrtc/wire.ts';

export interface ReceiverStats {
  readonly codec: string | null;
  readonly bitrateKbps: number;
  readonly fps: number;
  readonly rttMs: number | null;
  readonly packetsLost: number;
  readonly framesDropped: number;
  readonly framesDecoded: number;
  readonly jitterBufferMs: number | null;
}

export interface WebRtcView {
  readonly peerId: string;
  readonly pc: RTCPeerConnection;
  readonly video: HTMLVideoElement;
  stats(): Promise<ReceiverStats>;
  /** Send a track (the camera, at the input track's size) to feed the model's `inputTrack`. */
  send(track: MediaStreamTrack, inputTrack: string): Promise<void>;
  stopSending(): Promise<void>;
  close(): void;
}

export interface ViewOptions {
  /** Every frame the <video> presents (metadata from requestVideoFrameCallback). */
  onFrame(video: HTMLVideoElement, meta: VideoFrameCallbackMetadata): void;
  /** The peer is gone (failed, or the server closed it). */
  onClosed(why: string): void;
  /** How long to wait for the connection before giving up (the page then falls back). */
  connectTimeoutMs: number;
}

const must = <T extends object>(r: Result<T>, what: string): T & { ok: true } => {
  if (!r.ok) throw new Error(`${what}: ${r.error.code}: ${r.error.message}`);
  return r as T & { ok: true };
};

/** Put the server's preferred codec first in what this browser will accept. */
function preferCodec(transceiver: RTCRtpTransceiver, codec: string): void {
  const caps = RTCRtpReceiver.getCapabilities?.('video');
  if (!caps || typeof transceiver.setCodecPreferences !== 'function') return;
  const wanted = `video/${codec}`.toLowerCase();
  const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  if (first.length === 0) return;
  transceiver.setCodecPreferences([...first, ...caps.codecs.filter((c) => c.mimeType.toLowerCase() !== wanted)]);
}

export async function openView(client: FramehostClient, config: WebRtcConfig, options: ViewOptions): Promise<WebRtcView> {
  if (!config.available) throw new Error(config.reason ?? 'WebRTC is not available on the server');
  if (typeof RTCPeerConnection === 'undefined') throw new Error('this browser has no RTCPeerConnection');
  const pc = new RTCPeerConnection({ iceServers: config.iceServers.map((s) => ({ ...s, urls: typeof s.urls === 'string' ? s.urls : [...s.urls] })) });
  const receive = pc.addTransceiver('video', { direction: 'recvonly' });
  preferCodec(receive, config.codec);
  // Play frames as soon as they are decoded: the stream is live, smoothness matters less than delay.
  (receive.receiver as RTCRtpReceiver & { jitterBufferTarget?: number | null }).jitterBufferTarget = 0;
  let peerId: string | null = null;
  let closed = false;
  const early: RTCIceCandidateInit[] = [];
  const sendCandidate = (c: RTCIceCandidateInit | null): void => {
    if (!peerId) {
      if (c) early.push(c);
      return;
    }
    const candidate = c ? { candidate: c.candidate ?? '', sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null } : null;
    void client.request('webrtc:candidate', { peerId, candidate });
  };
  pc.onicecandidate = (e) => sendCandidate(e.candidate ? e.candidate.toJSON() : null);
  const offCandidates = client.on('webrtc:candidate', ({ peerId: id, candidate }) => {
    if (id === peerId && candidate) pc.addIceCandidate(candidate).catch(() => undefined);
  });
  const offClosed = client.on('webrtc:closed', ({ peerId: id, reason }: { peerId: string; reason: PeerCloseReason }) => {
    if (id === peerId) finish(`the server closed the peer (${reason})`);
  });

  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.autoplay = true;
  video.srcObject = new MediaStream([receive.receiver.track]);
  const onFrame = (_now: number, meta: VideoFrameCallbackMetadata): void => {
    if (closed) return;
    options.onFrame(video, meta);
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);

  function finish(why: string | null): void {
    if (closed) return;
    closed = true;
    offCandidates();
    offClosed();
    pc.close();
    video.srcObject = null;
    if (why) options.onClosed(why);
  }

  const negotiate = async (extra: { inputTrack?: string } = {}): Promise<void> => {
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const r = must(await client.request('webrtc:offer', { sdp: offer.sdp ?? '', ...(peerId ? { peerId } : {}), ...extra }), 'webrtc:offer') as unknown as { peerId: string; sdp: string };
    const first = peerId === null;
    peerId = r.peerId;
    await pc.setRemoteDescription({ type: 'answer', sdp: r.sdp });
    if (first) for (const c of early.splice(0)) sendCandidate(c);
  };

  try {
    await negotiate();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection within ${options.connectTimeoutMs} ms (${pc.connectionState})`)), options.connectTimeoutMs);
      const check = (): void => {
        if (pc.connectionState === 'connected') {
          clearTimeout(timer);
          resolve();
        } else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') {
          clearTimeout(timer);
          reject(new Error(`the connection ${pc.connectionState}`));
        }
      };
      pc.addEventListener('connectionstatechange', check);
      check();
    });
  } catch (err) {
    if (peerId) void client.request('webrtc:close', { peerId });
    finish(null);
    throw err;
  }
  pc.addEventListener('connectionstatechange', () => pc.connectionState === 'failed' && finish('the connection failed'));
  void video.play().catch(() => undefined); // muted: autoplay is allowed

  let sender: RTCRtpSender | null = null;
  let last: { t: number; bytes: number } | null = null;
  return {
    get peerId() {
      return peerId!;
    },
    pc,
    video,
    async send(track, inputTrack) {
      if (sender) await sender.replaceTrack(track);
      else {
        const t = pc.addTransceiver(track, { direction: 'sendonly' });
        sender = t.sender;
        // The model's track has one size: keep it, let the frame rate give under load.
        const params = sender.getParameters();
        params.degradationPreference = 'maintain-resolution';
        await sender.setParameters(params).catch(() => undefined);
      }
      await negotiate({ inputTrack });
    },
    async stopSending() {
      await sender?.replaceTrack(null);
    },
    async stats() {
      const report = await pc.getStats();
      let bytes = 0;
      let fps = 0;
      let lost = 0;
      let dropped = 0;
      let decoded = 0;
      let codecId: string | null = null;
      let rttMs: number | null = null;
      let jitterBufferMs: number | null = null;
      const codecs = new Map<string, string>();
      report.forEach((s: Record<string, unknown>) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          bytes = Number(s.bytesReceived ?? 0);
          fps = Number(s.framesPerSecond ?? 0);
          lost = Number(s.packetsLost ?? 0);
          dropped = Number(s.framesDropped ?? 0);
          decoded = Number(s.framesDecoded ?? 0);
          codecId = typeof s.codecId === 'string' ? s.codecId : null;
          const emitted = Number(s.jitterBufferEmittedCount ?? 0);
          if (emitted > 0) jitterBufferMs = (Number(s.jitterBufferDelay ?? 0) / emitted) * 1000;
        } else if (s.type === 'codec' && typeof s.mimeType === 'string') {
          codecs.set(String(s.id), s.mimeType.replace(/^video\//, ''));
        } else if (s.type === 'candidate-pair' && s.nominated === true && typeof s.currentRoundTripTime === 'number') {
          rttMs = s.currentRoundTripTime * 1000;
        }
      });
      const now = performance.now();
      const bitrateKbps = last && now > last.t ? ((bytes - last.bytes) * 8) / (now - last.t) : 0;
      last = { t: now, bytes };
      return { codec: codecId ? (codecs.get(codecId) ?? null) : null, bitrateKbps, fps, rttMs, packetsLost: lost, framesDropped: dropped, framesDecoded: decoded, jitterBufferMs };
    },
    close() {
      if (peerId && !closed) void client.request('webrtc:close', { peerId });
      finish(null);
    },
  };
}

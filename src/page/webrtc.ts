/**
 * The page's WebRTC side: a peer connection to the server, negotiated over the page's Socket.IO
 * connection (the page offers, the server answers in the ack, candidates trickle both ways).
 * The server's video track plays in a hidden <video>; every presented frame is handed to the
 * page (requestVideoFrameCallback), which draws it on the canvas it already shows.
 *
 * The camera can go the other way on the same peer (a renegotiation adds a send section).
 */
import type { FramehostClient } from '../client/client.ts';
import type { Result } from '../errors.ts';
import type { PeerCloseReason, WebRtcConfig } from '../transport/webrtc/wire.ts';

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
  const view = new PeerView(client, config, options);
  await view.connect();
  return view;
}

/** A hidden, muted <video> that plays the server's track. */
function playerOf(track: MediaStreamTrack): HTMLVideoElement {
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.autoplay = true;
  video.srcObject = new MediaStream([track]);
  return video;
}

/** Resolves once the peer connection is connected; rejects when it fails, closes or takes too long. */
function connected(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms (${pc.connectionState})`)), timeoutMs);
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
}

/** One peer connection to the server, from the first offer to its close. */
class PeerView implements WebRtcView {
  readonly pc: RTCPeerConnection;
  readonly video: HTMLVideoElement;
  private id: string | null = null;
  private closed = false;
  /** Candidates found before the server named the peer: sent once it has. */
  private readonly early: RTCIceCandidateInit[] = [];
  private readonly off: (() => void)[];
  private sender: RTCRtpSender | null = null;
  /** The previous stats() reading, for the bitrate between two. */
  private last: { t: number; bytes: number } | null = null;

  constructor(
    private readonly client: FramehostClient,
    config: WebRtcConfig,
    private readonly options: ViewOptions,
  ) {
    const pc = new RTCPeerConnection({ iceServers: config.iceServers.map((s) => ({ ...s, urls: typeof s.urls === 'string' ? s.urls : [...s.urls] })) });
    this.pc = pc;
    const receive = pc.addTransceiver('video', { direction: 'recvonly' });
    preferCodec(receive, config.codec);
    // Play frames as soon as they are decoded: the stream is live, smoothness matters less than delay.
    (receive.receiver as RTCRtpReceiver & { jitterBufferTarget?: number | null }).jitterBufferTarget = 0;
    pc.onicecandidate = (e) => this.sendCandidate(e.candidate ? e.candidate.toJSON() : null);
    this.off = [
      client.on('webrtc:candidate', ({ peerId: id, candidate }) => {
        if (id === this.id && candidate) pc.addIceCandidate(candidate).catch(() => undefined);
      }),
      client.on('webrtc:closed', ({ peerId: id, reason }: { peerId: string; reason: PeerCloseReason }) => {
        if (id === this.id) this.finish(`the server closed the peer (${reason})`);
      }),
    ];
    this.video = playerOf(receive.receiver.track);
    this.video.requestVideoFrameCallback(this.onFrame);
  }

  get peerId(): string {
    return this.id!;
  }

  /** The first offer, then the wait for the connection; on failure the peer is closed and the error thrown. */
  async connect(): Promise<void> {
    try {
      await this.negotiate();
      await connected(this.pc, this.options.connectTimeoutMs);
    } catch (err) {
      if (this.id) void this.client.request('webrtc:close', { peerId: this.id });
      this.finish(null);
      throw err;
    }
    this.pc.addEventListener('connectionstatechange', () => this.pc.connectionState === 'failed' && this.finish('the connection failed'));
    void this.video.play().catch(() => undefined); // muted: autoplay is allowed
  }

  async send(track: MediaStreamTrack, inputTrack: string): Promise<void> {
    if (this.sender) await this.sender.replaceTrack(track);
    else {
      const t = this.pc.addTransceiver(track, { direction: 'sendonly' });
      this.sender = t.sender;
      // The model's track has one size: keep it, let the frame rate give under load.
      const params = this.sender.getParameters();
      params.degradationPreference = 'maintain-resolution';
      await this.sender.setParameters(params).catch(() => undefined);
    }
    await this.negotiate({ inputTrack });
  }

  async stopSending(): Promise<void> {
    await this.sender?.replaceTrack(null);
  }

  async stats(): Promise<ReceiverStats> {
    const read = readStats(await this.pc.getStats());
    const now = performance.now();
    const bitrateKbps = this.last && now > this.last.t ? ((read.bytes - this.last.bytes) * 8) / (now - this.last.t) : 0;
    this.last = { t: now, bytes: read.bytes };
    return { codec: read.codec, bitrateKbps, fps: read.fps, rttMs: read.rttMs, packetsLost: read.packetsLost, framesDropped: read.framesDropped, framesDecoded: read.framesDecoded, jitterBufferMs: read.jitterBufferMs };
  }

  close(): void {
    if (this.id && !this.closed) void this.client.request('webrtc:close', { peerId: this.id });
    this.finish(null);
  }

  private readonly onFrame = (_now: number, meta: VideoFrameCallbackMetadata): void => {
    if (this.closed) return;
    this.options.onFrame(this.video, meta);
    this.video.requestVideoFrameCallback(this.onFrame);
  };

  private sendCandidate(c: RTCIceCandidateInit | null): void {
    if (!this.id) {
      if (c) this.early.push(c);
      return;
    }
    const candidate = c ? { candidate: c.candidate ?? '', sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null } : null;
    void this.client.request('webrtc:candidate', { peerId: this.id, candidate });
  }

  /** An offer (the first, or a renegotiation that adds the camera), answered in the server's ack. */
  private async negotiate(extra: { inputTrack?: string } = {}): Promise<void> {
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    const request = { sdp: offer.sdp ?? '', ...(this.id ? { peerId: this.id } : {}), ...extra };
    const r = must(await this.client.request('webrtc:offer', request), 'webrtc:offer') as unknown as { peerId: string; sdp: string };
    const first = this.id === null;
    this.id = r.peerId;
    await this.pc.setRemoteDescription({ type: 'answer', sdp: r.sdp });
    if (first) for (const c of this.early.splice(0)) this.sendCandidate(c);
  }

  private finish(why: string | null): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.off) off();
    this.pc.close();
    this.video.srcObject = null;
    if (why) this.options.onClosed(why);
  }
}

/** What one getStats() report says of the received video; `bytes` so far, for the bitrate. */
function readStats(report: RTCStatsReport): Omit<ReceiverStats, 'bitrateKbps'> & { bytes: number } {
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
  return { codec: codecId ? (codecs.get(codecId) ?? null) : null, fps, rttMs, packetsLost: lost, framesDropped: dropped, framesDecoded: decoded, jitterBufferMs, bytes };
}

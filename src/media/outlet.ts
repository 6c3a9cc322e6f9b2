/**
 * One viewer of a rendition: a node-datachannel (libdatachannel) peer connection that answers the
 * viewer's offer with a send-only VP8 track and takes RTP packets already encoded for everybody.
 * NACKs are answered by libdatachannel's RtcpNackResponder from its packet history; PLI and FIR
 * reach `onKeyframeRequest`. ICE binds only `bindAddress` when one is given (libjuice gathers on
 * that address alone), so tests and private deployments keep media on it.
 */
import { randomInt } from 'node:crypto';
import nodeDataChannel from 'node-datachannel';
import type { PeerConnection, Track } from 'node-datachannel';
import { readSendingOffer, readVideoOffer, type SendingOffer } from './offer.ts';
import { reportBlocks, roundTripMs, senderReport, type ReportBlock } from './rtcp.ts';
import { asksForKeyframe, isRtcp, PLAYOUT_DELAY_URI, RtpWriter, VIDEO_CLOCK_HZ } from './vp8-rtp.ts';
import { beforeExit } from '../util/exit-hooks.ts';

// libdatachannel's threads end before the process does (else an exit during or after a
// publication could abort with SIGABRT): the CLI runs this hook right before process.exit.
beforeExit(() => nodeDataChannel.cleanup());

/**
 * A callback for node-datachannel that never throws back into it: an exception that reaches the
 * library from one of its callbacks is rethrown there as a C++ exception and aborts the process
 * (SIGABRT, "terminate called after throwing an instance of 'Napi::Error'"). It becomes a
 * process warning instead, and the peer's own lifecycle (its chart) deals with the rest.
 */
export function guarded<A extends unknown[]>(what: string, fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      process.emitWarning(`node-datachannel ${what} callback threw: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
}

/** A peer's RTCP keyframe requests, opening, state and close, told to `events` (a viewer's outlet and the Janus offer alike). */
export function reportOutletEvents(pc: PeerConnection, track: Track, outlet: Outlet, events: OutletEvents): void {
  track.onMessage(
    guarded('onMessage', (msg) => {
      if (!isRtcp(msg)) return;
      if (asksForKeyframe(msg)) {
        outlet.keyframeRequests++;
        events.keyframeRequest();
      }
      for (const block of reportBlocks(msg, outlet.ssrc)) events.report?.(outlet.received(block));
    }),
  );
  track.onOpen(guarded('onOpen', () => events.opened()));
  pc.onStateChange(guarded('onStateChange', (state) => events.state?.(state)));
  track.onClosed(guarded('onClosed', () => events.closed(outlet)));
}

/** Set the local description and wait for ICE gathering (at most `timeoutMs`): its SDP with the candidates found, or null. */
export async function gatheredDescription(pc: PeerConnection, type: 'offer' | 'answer', timeoutMs: number): Promise<string | null> {
  const gathered = new Promise<void>((resolve) => {
    pc.onGatheringStateChange(guarded('onGatheringStateChange', (state) => state === 'complete' && resolve()));
    setTimeout(resolve, timeoutMs).unref();
  });
  pc.setLocalDescription(type);
  // A renegotiation: the candidates were gathered for the first description, nothing more comes.
  if (pc.gatheringState() !== 'complete') await gathered;
  return pc.localDescription()?.sdp ?? null;
}

export interface OutletOptions {
  /** The only local address ICE uses (e.g. 127.0.0.1); undefined: every interface. */
  readonly bindAddress?: string;
  /** How long gathering may take before the answer goes out with what it has. */
  readonly gatherTimeoutMs: number;
  /** Packets kept for retransmission on NACK (at 60 fps and ~2 packets a frame, ~4 s). */
  readonly nackHistory: number;
  /**
   * Write the playout-delay extension (min = max = 0) when the offer gives it an id: Chromium then
   * renders each frame at once. false leaves it out of the answer and the packets (the bench
   * measures glass-to-glass both ways).
   */
  readonly playoutDelay: boolean;
}

export const DEFAULT_OUTLET: OutletOptions = { gatherTimeoutMs: 2000, nackHistory: 512, playoutDelay: true };

export interface OutletEvents {
  /** The track can carry media: it needs a keyframe to start. */
  opened(): void;
  /** The peer connection's state, as libdatachannel reports it ('connected', 'failed', …). */
  state?(state: string): void;
  keyframeRequest(): void;
  /** A receiver report about this outlet's stream (RTCP RR or an SR's block), with the round trip it gives. */
  report?(report: ViewerReport): void;
  closed(outlet: Outlet): void;
}

/** What a viewer's receiver report says, with the round trip (ms, null without a sender report to echo). */
export interface ViewerReport extends ReportBlock {
  readonly rttMs: number | null;
  /** When it arrived (performance.now()). */
  readonly at: number;
}

/** A sender report this often: each of the viewer's receiver reports then echoes one (RTT). */
export const SENDER_REPORT_INTERVAL_MS = 1000;

export class Outlet {
  /** Packets handed to the track, and keyframe requests from the viewer. */
  sent = 0;
  keyframeRequests = 0;
  /** Encoded frames sent whole. */
  frames = 0;
  /** The viewer's last receiver report about this stream (null: none yet). */
  lastReport: ViewerReport | null = null;
  /** Payload bytes sent, and the last RTP timestamp with when it went: a sender report's figures. */
  private octets = 0;
  private lastSent: { timestamp: number; at: number } | null = null;
  private lastSenderReportAt = -Infinity;
  /** RTP bytes handed to the track (headers and payloads, before SRTP). */
  bytes = 0;
  /** Nothing goes out before a keyframe: the viewer could not decode it. */
  private started = false;
  /** The viewer's camera: a receiving track for the section it sends on (one per peer), once offered. */
  private incoming: (SendingOffer & { readonly track: Track }) | null = null;
  /** Where the camera's RTP packets go (src/media/inlet.ts); dropped while null. */
  onIncoming: ((packet: Buffer) => void) | null = null;
  /** Made by `answer` for a viewer, or by src/media/sfu-offer.ts for an SFU (which answers our offer). */
  constructor(
    private readonly pc: PeerConnection,
    private readonly track: Track,
    private readonly rtp: RtpWriter,
    /** The offer's video section: where trickled candidates of the viewer go. */
    readonly mid: string,
  ) {}

  /** Answer a viewer's offer; the answer carries the candidates gathered (no trickle needed). */
  static async answer(offer: string, events: OutletEvents, options: OutletOptions = DEFAULT_OUTLET): Promise<{ outlet: Outlet; sdp: string } | string> {
    const video = readVideoOffer(offer);
    if (typeof video === 'string') return video;
    const pc = new nodeDataChannel.PeerConnection('viewer', {
      iceServers: [],
      disableAutoNegotiation: true,
      enableIceTcp: false,
      ...(options.bindAddress ? { bindAddress: options.bindAddress } : {}),
    });
    try {
      pc.setRemoteDescription(offer, 'offer');
      const outletSsrc = randomInt(1, 0xffffffff);
      const media = new nodeDataChannel.Video(video.mid, 'SendOnly');
      media.addVP8Codec(video.vp8PayloadType);
      media.addSSRC(outletSsrc, 'framehost', 'framehost', 'video');
      const playoutDelayId = options.playoutDelay ? video.playoutDelayId : null;
      if (playoutDelayId !== null) media.parseSdpLine(`a=extmap:${playoutDelayId} ${PLAYOUT_DELAY_URI}`);
      const track = pc.addTrack(media);
      track.setMediaHandler(new nodeDataChannel.RtcpNackResponder(options.nackHistory));
      const rtp = new RtpWriter({ ssrc: outletSsrc, payloadType: video.vp8PayloadType, playoutDelayId });
      const outlet = new Outlet(pc, track, rtp, video.mid);
      reportOutletEvents(pc, track, outlet, events);
      outlet.receiveOn(offer);
      const sdp = await gatheredDescription(pc, 'answer', options.gatherTimeoutMs);
      if (!sdp) throw new Error('no answer');
      return { outlet, sdp };
    } catch (err) {
      pc.close();
      return err instanceof Error ? err.message.slice(0, 200) : 'cannot answer this offer';
    }
  }

  /**
   * The viewer's camera section, if its offer has one (`a=sendonly`) and none was taken yet: a
   * receive-only VP8 track with the offer's payload type. libdatachannel's RtcpReceivingSession
   * sends the receiver reports and the PLIs (`requestIncomingKeyframe`).
   */
  private receiveOn(offer: string): void {
    if (this.incoming) return;
    const sending = readSendingOffer(offer);
    if (!sending || sending.mid === this.mid) return;
    const media = new nodeDataChannel.Video(sending.mid, 'RecvOnly');
    media.addVP8Codec(sending.vp8PayloadType);
    const track = this.pc.addTrack(media);
    track.setMediaHandler(new nodeDataChannel.RtcpReceivingSession());
    track.onMessage(guarded('onMessage', (msg) => this.onIncoming?.(msg)));
    this.incoming = { ...sending, track };
  }

  /** The payload type of the viewer's camera, once its offer had one; else null. */
  get incomingPayloadType(): number | null {
    return this.incoming?.vp8PayloadType ?? null;
  }

  /** Ask the viewer's camera for a keyframe (a PLI on its track). */
  requestIncomingKeyframe(): boolean {
    const t = this.incoming?.track;
    if (!t || !t.isOpen()) return false;
    try {
      return t.requestKeyframe();
    } catch {
      return false;
    }
  }

  /**
   * A new offer of the same viewer (a renegotiation: e.g. the page adds its camera): libdatachannel
   * applies it in place, on the same transport; a new camera section gets a receiving track. The
   * answer, or why not.
   */
  async renegotiate(offer: string, options: OutletOptions = DEFAULT_OUTLET): Promise<{ sdp: string } | string> {
    const video = readVideoOffer(offer);
    if (typeof video === 'string') return video;
    if (video.mid !== this.mid) return `the video section to receive on moved (mid ${video.mid}, was ${this.mid})`;
    try {
      this.pc.setRemoteDescription(offer, 'offer');
      this.receiveOn(offer);
      const sdp = await gatheredDescription(this.pc, 'answer', options.gatherTimeoutMs);
      return sdp ? { sdp } : 'no answer';
    } catch (err) {
      return err instanceof Error ? err.message.slice(0, 200) : 'cannot answer this offer';
    }
  }

  get isOpen(): boolean {
    return this.track.isOpen();
  }

  get ssrc(): number {
    return this.rtp.ssrc;
  }

  /** A report block about this stream arrived: kept, with its round trip. */
  received(block: ReportBlock): ViewerReport {
    this.lastReport = { ...block, rttMs: roundTripMs(block, Date.now()), at: performance.now() };
    return this.lastReport;
  }

  /** Whether the outlet still waits for a keyframe to start with. */
  get waiting(): boolean {
    return !this.started;
  }

  /** A candidate the viewer trickled (`candidate:…`, with or without `a=`). */
  addRemoteCandidate(candidate: string): void {
    this.pc.addRemoteCandidate(candidate.replace(/^a=/, ''), this.mid);
  }

  /**
   * Bytes sent (counted here: libdatachannel's bytesSent() stayed 0 for a media-only peer, seen
   * in node-datachannel 0.33.4) and round trip (ms: the viewer's last receiver report, else
   * libdatachannel's; null when unknown).
   */
  figures(): { bytesSent: number; rttMs: number | null } {
    const rtt = this.pc.rtt();
    return { bytesSent: this.bytes, rttMs: this.lastReport?.rttMs ?? (rtt >= 0 ? rtt : null) };
  }

  /** One encoded frame's payloads, the same for every outlet, behind this outlet's RTP headers. */
  send(payloads: readonly Buffer[], timestamp: number, key: boolean): void {
    if (!this.track.isOpen()) return;
    if (!this.started && !key) return;
    this.started = true;
    payloads.forEach((p, i) => {
      const packet = this.rtp.packet(p, timestamp, i === payloads.length - 1);
      this.track.sendMessageBinary(packet);
      this.bytes += packet.length;
      this.sent++;
      this.octets += p.length;
    });
    this.frames++;
    const now = performance.now();
    this.lastSent = { timestamp, at: now };
    if (now - this.lastSenderReportAt >= SENDER_REPORT_INTERVAL_MS) this.sendSenderReport(now);
  }

  /** Our own sender report (the NTP time it carries is what the viewer echoes as LSR: RTT without libdatachannel's reporter). */
  private sendSenderReport(now: number): void {
    if (!this.lastSent) return;
    this.lastSenderReportAt = now;
    const rtpTimestamp = this.lastSent.timestamp + Math.round(((now - this.lastSent.at) * VIDEO_CLOCK_HZ) / 1000);
    this.track.sendMessageBinary(senderReport({ ssrc: this.ssrc, unixMs: Date.now(), rtpTimestamp, packets: this.sent, octets: this.octets }));
  }

  close(): void {
    this.onIncoming = null;
    this.incoming?.track.close();
    this.track.close();
    this.pc.close();
  }
}

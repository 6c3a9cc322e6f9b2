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
import { readVideoOffer } from './offer.ts';
import { asksForKeyframe, isRtcp, PLAYOUT_DELAY_URI, RtpWriter } from './vp8-rtp.ts';
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
      if (isRtcp(msg) && asksForKeyframe(msg)) {
        outlet.keyframeRequests++;
        events.keyframeRequest();
      }
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
  await gathered;
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
  closed(outlet: Outlet): void;
}

export class Outlet {
  /** Packets handed to the track, and keyframe requests from the viewer. */
  sent = 0;
  keyframeRequests = 0;
  /** Encoded frames sent whole. */
  frames = 0;
  /** Nothing goes out before a keyframe: the viewer could not decode it. */
  private started = false;
  /** Made by `answer` for a viewer, or by src/media/janus/offer.ts for an SFU (which answers our offer). */
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
      const sdp = await gatheredDescription(pc, 'answer', options.gatherTimeoutMs);
      if (!sdp) throw new Error('no answer');
      return { outlet, sdp };
    } catch (err) {
      pc.close();
      return err instanceof Error ? err.message.slice(0, 200) : 'cannot answer this offer';
    }
  }

  get isOpen(): boolean {
    return this.track.isOpen();
  }

  /** Whether the outlet still waits for a keyframe to start with. */
  get waiting(): boolean {
    return !this.started;
  }

  /** A candidate the viewer trickled (`candidate:…`, with or without `a=`). */
  addRemoteCandidate(candidate: string): void {
    this.pc.addRemoteCandidate(candidate.replace(/^a=/, ''), this.mid);
  }

  /** Bytes sent and round trip (ms, null when unknown), from libdatachannel. */
  figures(): { bytesSent: number; rttMs: number | null } {
    const rtt = this.pc.rtt();
    return { bytesSent: this.pc.bytesSent(), rttMs: rtt >= 0 ? rtt : null };
  }

  /** One encoded frame's payloads, the same for every outlet, behind this outlet's RTP headers. */
  send(payloads: readonly Buffer[], timestamp: number, key: boolean): void {
    if (!this.track.isOpen()) return;
    if (!this.started && !key) return;
    this.started = true;
    payloads.forEach((p, i) => {
      this.track.sendMessageBinary(this.rtp.packet(p, timestamp, i === payloads.length - 1));
      this.sent++;
    });
    this.frames++;
  }

  close(): void {
    this.track.close();
    this.pc.close();
  }
}

/**
 * A viewer's camera coming in over its peer (the room sender's receiving side): RTP packets of
 * the browser's VP8 track in, RGBA frames at the input track's size out. One per peer. Packets are
 * put back into frames (vp8-depacketizer.ts), decoded (vp8-decoder.ts, libvpx in node-av) and
 * scaled; a lost packet, or a frame the decoder refuses, drops frames until the next keyframe and
 * asks the browser for one (PLI), at most once per `keyframeIntervalMs`.
 */
import { Vp8Decoder, type DecodedFrame } from './vp8-decoder.ts';
import { Vp8Depacketizer } from './vp8-depacketizer.ts';
import { isRtcp } from './vp8-rtp.ts';

export interface InletOptions {
  /** The input track's size: every frame comes out at it. */
  readonly width: number;
  readonly height: number;
  /** The payload type the offer gave VP8 (packets of other types are ignored). */
  readonly payloadType: number | null;
  /** At most one keyframe request (PLI) this often. */
  readonly keyframeIntervalMs: number;
}

export const INLET_KEYFRAME_INTERVAL_MS = 250;

export interface InletEvents {
  /** A decoded frame, RGBA at the track's size. */
  frame(frame: DecodedFrame): void;
  /** Send the browser a PLI (rate-limited here). */
  requestKeyframe(): void;
  /** A decode error (the inlet goes on with the next keyframe). */
  problem?(err: unknown): void;
}

export class Inlet {
  private readonly depacketizer: Vp8Depacketizer;
  private readonly decoder: Vp8Decoder;
  private lastRequest = -Infinity;
  private wanted = false;
  private closed = false;
  /** Frames decoded, decode errors, keyframe requests sent, time spent decoding and scaling (ms). */
  readonly counts = { decoded: 0, decodeErrors: 0, keyframeRequests: 0, decodeMs: 0 };

  constructor(
    readonly options: InletOptions,
    private readonly events: InletEvents,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.depacketizer = new Vp8Depacketizer(options.payloadType);
    this.decoder = new Vp8Decoder(options.width, options.height);
  }

  /** Packets in, gaps and drops, as the depacketizer counted them. */
  get packets(): Vp8Depacketizer['counts'] {
    return this.depacketizer.counts;
  }

  /** One packet from the browser's track (RTCP is ignored: libdatachannel reads what it needs). */
  packet(msg: Buffer): void {
    if (this.closed || isRtcp(msg)) return;
    const r = this.depacketizer.push(msg);
    if (r === 'gap' || r === 'waiting') this.askKeyframe();
    else if (r) this.decode(r.data);
    else if (this.wanted) this.askKeyframe(); // a request that waited for its slot
  }

  private decode(vp8: Buffer): void {
    const t = this.now();
    let frames: DecodedFrame[];
    try {
      frames = this.decoder.decode(vp8);
    } catch (err) {
      this.counts.decodeErrors++;
      this.depacketizer.reset();
      this.events.problem?.(err);
      this.askKeyframe();
      return;
    }
    this.counts.decodeMs += this.now() - t;
    for (const f of frames) {
      this.counts.decoded++;
      this.events.frame(f);
    }
  }

  /** A PLI now, or at the first packet after the interval. */
  private askKeyframe(): void {
    const now = this.now();
    if (now - this.lastRequest < this.options.keyframeIntervalMs) {
      this.wanted = true;
      return;
    }
    this.wanted = false;
    this.lastRequest = now;
    this.counts.keyframeRequests++;
    this.events.requestKeyframe();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.decoder.close();
  }
}

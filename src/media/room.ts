/**
 * The media room of one session: each frame is encoded once per rendition and the same payloads go
 * to every outlet (viewer) of it, so an extra viewer costs a few packet copies, not an encoder. A
 * viewer that joins, or asks by PLI/FIR, gets a keyframe; keyframes are rate-limited for everybody
 * (`minKeyframeIntervalMs`): a storm of joins or PLIs cannot turn the stream into keyframes only.
 */
import { scaledBitrateKbps } from './bitrate.ts';
import { Outlet, type OutletOptions, DEFAULT_OUTLET } from './outlet.ts';
import { Vp8Encoder } from './vp8-encoder.ts';
import { VIDEO_CLOCK_HZ, vp8Payloads } from './vp8-rtp.ts';

export interface RoomOptions {
  /** Frame rate the encoder is tuned for (its rate control budgets bits per frame from it). */
  readonly fps: number;
  /** null: scaled to the frame's pixels (~1,000 kbit/s at 256²). */
  readonly bitrateKbps: number | null;
  /** At most one keyframe this often, however many ask; a request meanwhile waits for the next slot. */
  readonly minKeyframeIntervalMs: number;
  /** A keyframe at least every this many frames, for a viewer that lost one and cannot ask. */
  readonly gopFrames: number;
  readonly outlet: OutletOptions;
}

export const DEFAULT_ROOM: RoomOptions = { fps: 60, bitrateKbps: null, minKeyframeIntervalMs: 100, gopFrames: 600, outlet: DEFAULT_OUTLET };

export interface RoomFrame {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** Keyframes on request, no closer together than the interval (a pending request waits its turn). */
export class KeyframeGate {
  private wanted = false;
  private last = -Infinity;

  constructor(private readonly minIntervalMs: number) {}

  request(): void {
    this.wanted = true;
  }

  /** Whether the frame encoded at `now` should be a keyframe. */
  take(now: number): boolean {
    if (!this.wanted || now - this.last < this.minIntervalMs) return false;
    this.wanted = false;
    this.last = now;
    return true;
  }
}

/** One frame as the encoder made it (the VP8 bitstream), for a recording. */
export interface EncodedVideo {
  readonly data: Buffer;
  readonly key: boolean;
  readonly width: number;
  readonly height: number;
}

export class MediaRoom {
  /** Who also takes each encoded frame (recordings), besides the outlets. */
  private readonly taps = new Set<(e: EncodedVideo) => void>();
  private encoder: Vp8Encoder | null = null;
  private readonly outlets = new Set<Outlet>();
  private readonly gate: KeyframeGate;
  private pictureId = 0;
  /** The last frame encoded (the same object: the stream hands each viewer the one frame) and its payloads: one encode however many outlets. */
  private last: { frame: RoomFrame; encoded: readonly { payloads: Buffer[]; timestamp: number; key: boolean }[] } | null = null;
  private readonly startedAt = performance.now();
  /** Frames encoded, keyframes among them, and the time spent encoding (ms). */
  readonly counts = { frames: 0, keyframes: 0, encodeMs: 0 };

  constructor(private readonly options: RoomOptions = DEFAULT_ROOM) {
    this.gate = new KeyframeGate(options.minKeyframeIntervalMs);
  }

  get viewers(): number {
    return this.outlets.size;
  }

  /** A viewer's offer: its answer, or why not; the viewer gets a keyframe once it can receive one. */
  async join(offer: string, state?: (state: string) => void): Promise<{ outlet: Outlet; sdp: string } | string> {
    const events = { opened: () => this.gate.request(), keyframeRequest: () => this.gate.request(), closed: (o: Outlet) => this.outlets.delete(o), ...(state ? { state } : {}) };
    const r = await Outlet.answer(offer, events, this.options.outlet);
    if (typeof r === 'string') return r;
    this.outlets.add(r.outlet);
    return r;
  }

  /**
   * Take every frame this room encodes from now on, starting with a keyframe (a recording
   * cannot start on a delta frame). Returns the way to stop.
   */
  tap(fn: (e: EncodedVideo) => void): () => void {
    this.taps.add(fn);
    this.gate.request();
    return () => this.taps.delete(fn);
  }

  /** Encode the frame for the taps even when no viewer watches (once: a viewer's delivery reuses it). */
  record(frame: RoomFrame): void {
    if (this.taps.size > 0) this.encodeOnce(frame);
  }

  /** Encode the frame once and send it to every open outlet. */
  push(frame: RoomFrame): void {
    if (this.outlets.size === 0) return;
    const encoded = this.encodeOnce(frame);
    for (const outlet of this.outlets) for (const e of encoded) outlet.send(e.payloads, e.timestamp, e.key);
  }

  /**
   * Send the frame to one outlet, encoding it only if no outlet had it yet: the server's stream
   * feeds each attached viewer in turn with the same frame, and a viewer not attached gets nothing.
   */
  deliver(frame: RoomFrame, outlet: Outlet): void {
    if (outlet.waiting) this.gate.request();
    for (const e of this.encodeOnce(frame)) outlet.send(e.payloads, e.timestamp, e.key);
  }

  /** The frame's payloads, encoded at its first push or delivery and kept for the others. */
  private encodeOnce(frame: RoomFrame): readonly { payloads: Buffer[]; timestamp: number; key: boolean }[] {
    if (this.last?.frame === frame) return this.last.encoded;
    const encoder = this.encoderFor(frame);
    const now = performance.now();
    if (this.gate.take(now)) encoder.requestKeyframe();
    const timestamp = Math.round(((now - this.startedAt) * VIDEO_CLOCK_HZ) / 1000);
    const encoded = encoder.encode(frame.data).map((e) => {
      this.counts.frames++;
      if (e.key) this.counts.keyframes++;
      const payloads = vp8Payloads(e.data, this.pictureId);
      this.pictureId = (this.pictureId + 1) & 0x7fff;
      for (const tap of this.taps) tap({ data: e.data, key: e.key, width: frame.width, height: frame.height });
      return { payloads, timestamp, key: e.key };
    });
    this.counts.encodeMs += performance.now() - now;
    this.last = { frame, encoded };
    return encoded;
  }

  /** The rendition's encoder; a new one (and a keyframe) when the frame size changes. */
  private encoderFor(frame: RoomFrame): Vp8Encoder {
    const e = this.encoder;
    if (e && e.options.width === frame.width && e.options.height === frame.height) return e;
    e?.close();
    const bitrateKbps = this.options.bitrateKbps ?? scaledBitrateKbps(frame.width * frame.height);
    this.encoder = new Vp8Encoder({ width: frame.width, height: frame.height, fps: this.options.fps, bitrateKbps, gopFrames: this.options.gopFrames });
    return this.encoder;
  }

  /** A keyframe for an outlet the room did not make (an SFU's PLI): the same rate limit as everybody's. */
  requestKeyframe(): void {
    this.gate.request();
  }

  /** A viewer leaves (its outlet is closed); the encoder stays for the others. */
  leave(outlet: Outlet): void {
    this.outlets.delete(outlet);
    outlet.close();
  }

  close(): void {
    for (const o of this.outlets) o.close();
    this.outlets.clear();
    this.encoder?.close();
    this.encoder = null;
  }
}

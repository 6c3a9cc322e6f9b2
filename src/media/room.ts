/**
 * The media room of one session: each frame is encoded once per rendition and the same payloads go
 * to every outlet (viewer) of it, so an extra viewer costs a few packet copies, not an encoder. A
 * viewer that joins, or asks by PLI/FIR, gets a keyframe; keyframes are rate-limited for everybody
 * (`minKeyframeIntervalMs`, per rendition): a storm of joins or PLIs cannot turn the stream into
 * keyframes only.
 *
 * Two renditions: `top` (the frame's size at the full bitrate, what everybody gets by default) and
 * `low` (half the width and height, a third of the bitrate: `lowSizeShare`, `lowBitrateShare`),
 * encoded only while some viewer is on it or moving to it. Half the size is a quarter of the
 * pixels, so the second encode costs a fraction of the first (measured in docs/media.md); a
 * viewer's decoder takes the new size at the keyframe it switches on. Each
 * viewer's receiver reports drive its own rendition chart (src/machines/rendition.machine.ts):
 * sustained loss or silence moves it down, sustained clean reports back up. A move waits for the
 * target rendition's next keyframe (asked for at once, within its rate limit), so the viewer's
 * decoder never sees a delta frame of a stream it has no reference for. The model never waits for
 * a viewer: a frame goes to each outlet as it is made, whatever the others do.
 */
import { createActor, type Actor } from 'xstate';
import { DEFAULT_RENDITION_LIMITS, renditionMachine, wantedRendition, type RenditionLimits } from '../machines/rendition.machine.ts';
import { encoderTargetKbps, scaledBitrateKbps } from './bitrate.ts';
import { Outlet, type OutletOptions, type ViewerReport, DEFAULT_OUTLET } from './outlet.ts';
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
  /** The low rendition's bitrate, as a share of the top one's. */
  readonly lowBitrateShare: number;
  /** The low rendition's width and height, as a share of the frame's (rounded down to even). */
  readonly lowSizeShare: number;
  /** When a viewer moves between renditions (src/machines/rendition.machine.ts). */
  readonly rendition: RenditionLimits;
  readonly outlet: OutletOptions;
}

export const DEFAULT_ROOM: RoomOptions = {
  fps: 60,
  bitrateKbps: null,
  minKeyframeIntervalMs: 100,
  gopFrames: 600,
  lowBitrateShare: 1 / 3,
  lowSizeShare: 1 / 2,
  rendition: DEFAULT_RENDITION_LIMITS,
  outlet: DEFAULT_OUTLET,
};

export type RenditionName = 'top' | 'low';
export const RENDITIONS: readonly RenditionName[] = ['top', 'low'];

/** One rendition's encoder and figures: frames and keyframes encoded, ms spent encoding them. */
class Rendition {
  encoder: Vp8Encoder | null = null;
  readonly gate: KeyframeGate;
  pictureId = 0;
  readonly counts = { frames: 0, keyframes: 0, encodeMs: 0 };
  constructor(
    readonly name: RenditionName,
    minKeyframeIntervalMs: number,
  ) {
    this.gate = new KeyframeGate(minKeyframeIntervalMs);
  }
}

/** A viewer the room made: the rendition it gets, the one its chart wants, and the chart. */
interface Viewer {
  on: RenditionName;
  want: RenditionName;
  readonly chart: Actor<typeof renditionMachine>;
}

type Encoded = readonly { payloads: Buffer[]; timestamp: number; key: boolean }[];

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
  /** Who also takes each encoded frame of the top rendition (recordings), besides the outlets. */
  private readonly taps = new Set<(e: EncodedVideo) => void>();
  private readonly renditions: Record<RenditionName, Rendition>;
  /** Outlets of the room's own viewers (join); an SFU's outlet (deliver only) gets the top rendition. */
  private readonly viewersOf = new Map<Outlet, Viewer>();
  /** The last frame (the same object: the stream hands each viewer the one frame), its RTP time, and its payloads per rendition encoded so far. */
  private last: { frame: RoomFrame; timestamp: number; encoded: Map<RenditionName, Encoded> } | null = null;
  private readonly startedAt = performance.now();
  /** Frames encoded (all renditions), keyframes among them, and the time spent encoding (ms). */
  readonly counts = { frames: 0, keyframes: 0, encodeMs: 0 };

  constructor(private readonly options: RoomOptions = DEFAULT_ROOM) {
    this.renditions = { top: new Rendition('top', options.minKeyframeIntervalMs), low: new Rendition('low', options.minKeyframeIntervalMs) };
  }

  get viewers(): number {
    return this.viewersOf.size;
  }

  /** Per rendition: frames and keyframes encoded, ms spent, and viewers on it now. */
  renditionCounts(): Record<RenditionName, { frames: number; keyframes: number; encodeMs: number; viewers: number }> {
    const on = (name: RenditionName) => [...this.viewersOf.values()].filter((v) => v.on === name).length;
    const of = (name: RenditionName) => ({ ...this.renditions[name].counts, viewers: on(name) });
    return { top: of('top'), low: of('low') };
  }

  /** The rendition an outlet gets now (top for one the room did not make). */
  renditionOf(outlet: Outlet): RenditionName {
    return this.viewersOf.get(outlet)?.on ?? 'top';
  }

  /** A viewer's offer: its answer, or why not; the viewer gets a keyframe once it can receive one. */
  async join(offer: string, state?: (state: string) => void): Promise<{ outlet: Outlet; sdp: string } | string> {
    const chart = createActor(renditionMachine, { input: { limits: this.options.rendition } });
    const viewer: Viewer = { on: 'top', want: 'top', chart };
    const gate = () => this.renditions[viewer.on].gate;
    const events = {
      opened: () => gate().request(),
      keyframeRequest: () => gate().request(),
      report: (r: ViewerReport) => chart.send({ type: 'report', fractionLost: r.fractionLost }),
      closed: (o: Outlet) => this.forget(o),
      ...(state ? { state } : {}),
    };
    const r = await Outlet.answer(offer, events, this.options.outlet);
    if (typeof r === 'string') return r;
    chart.subscribe((snapshot) => this.wants(viewer, wantedRendition(snapshot.value)));
    chart.start();
    this.viewersOf.set(r.outlet, viewer);
    return r;
  }

  /** A viewer's chart changed its mind: the target rendition's next keyframe (asked for now) moves it. */
  private wants(viewer: Viewer, want: RenditionName): void {
    if (viewer.want === want) return;
    viewer.want = want;
    if (want !== viewer.on) this.renditions[want].gate.request();
    else this.closeIdle(); // a move down called off before its keyframe: the low encoder may be idle now
  }

  /**
   * Take every frame this room encodes from now on (the top rendition), starting with a keyframe
   * (a recording cannot start on a delta frame). Returns the way to stop.
   */
  tap(fn: (e: EncodedVideo) => void): () => void {
    this.taps.add(fn);
    this.renditions.top.gate.request();
    return () => this.taps.delete(fn);
  }

  /** Encode the frame for the taps even when no viewer watches (once: a viewer's delivery reuses it). */
  record(frame: RoomFrame): void {
    if (this.taps.size > 0) this.encodeOnce(frame, 'top');
  }

  /** Encode the frame once per rendition watched and send it to every outlet. */
  push(frame: RoomFrame): void {
    for (const outlet of this.viewersOf.keys()) this.deliver(frame, outlet);
  }

  /**
   * Send the frame to one outlet in its rendition, encoding it only if no outlet had it yet: the
   * server's stream feeds each attached viewer in turn with the same frame, and a viewer not
   * attached gets nothing. A viewer moving to another rendition switches on that one's keyframe.
   */
  deliver(frame: RoomFrame, outlet: Outlet): void {
    const viewer = this.viewersOf.get(outlet);
    let on = viewer?.on ?? 'top';
    if (viewer && viewer.want !== on) {
      const target = this.encodeOnce(frame, viewer.want);
      if (target.some((e) => e.key)) {
        viewer.on = on = viewer.want;
        this.closeIdle();
      }
    }
    if (outlet.waiting) this.renditions[on].gate.request();
    for (const e of this.encodeOnce(frame, on)) outlet.send(e.payloads, e.timestamp, e.key);
  }

  /** The frame's payloads in a rendition, encoded at its first delivery there and kept for the others. */
  private encodeOnce(frame: RoomFrame, name: RenditionName): Encoded {
    if (this.last?.frame !== frame) this.last = { frame, timestamp: Math.round(((performance.now() - this.startedAt) * VIDEO_CLOCK_HZ) / 1000), encoded: new Map() };
    const done = this.last.encoded.get(name);
    if (done) return done;
    const r = this.renditions[name];
    const encoder = this.encoderFor(r, frame);
    const started = performance.now();
    if (r.gate.take(started)) encoder.requestKeyframe();
    const { timestamp } = this.last;
    const encoded = encoder.encode(frame.data).map((e) => {
      for (const c of [r.counts, this.counts]) {
        c.frames++;
        if (e.key) c.keyframes++;
      }
      const payloads = vp8Payloads(e.data, r.pictureId);
      r.pictureId = (r.pictureId + 1) & 0x7fff;
      if (name === 'top') for (const tap of this.taps) tap({ data: e.data, key: e.key, width: frame.width, height: frame.height });
      return { payloads, timestamp, key: e.key };
    });
    const ms = performance.now() - started;
    r.counts.encodeMs += ms;
    this.counts.encodeMs += ms;
    this.last.encoded.set(name, encoded);
    return encoded;
  }

  /** The rendition's encoder; a new one (and a keyframe) when the frame size changes. */
  private encoderFor(r: Rendition, frame: RoomFrame): Vp8Encoder {
    const e = r.encoder;
    const source = { width: frame.width, height: frame.height };
    if (e && e.options.source?.width === frame.width && e.options.source.height === frame.height) return e;
    e?.close();
    const top = encoderTargetKbps(this.options.bitrateKbps ?? scaledBitrateKbps(frame.width * frame.height));
    const low = r.name === 'low';
    // Even sizes: the I420 planes halve them.
    const side = (n: number) => (low ? Math.max(2, Math.floor(n * this.options.lowSizeShare) & ~1) : n);
    const bitrateKbps = low ? Math.max(1, Math.round(top * this.options.lowBitrateShare)) : top;
    r.encoder = new Vp8Encoder({ width: side(frame.width), height: side(frame.height), source, fps: this.options.fps, bitrateKbps, gopFrames: this.options.gopFrames });
    return r.encoder;
  }

  /** The low rendition's encoder goes once no viewer is on it or moving to it (its next viewer starts it with a keyframe). */
  private closeIdle(): void {
    const low = this.renditions.low;
    if (!low.encoder || [...this.viewersOf.values()].some((v) => v.on === 'low' || v.want === 'low')) return;
    low.encoder.close();
    low.encoder = null;
  }

  /** A keyframe for an outlet the room did not make (an SFU's PLI): the same rate limit as everybody's. */
  requestKeyframe(): void {
    this.renditions.top.gate.request();
  }

  private forget(outlet: Outlet): void {
    this.viewersOf.get(outlet)?.chart.stop();
    this.viewersOf.delete(outlet);
    this.closeIdle();
  }

  /** A viewer leaves (its outlet is closed); the encoders stay for the others. */
  leave(outlet: Outlet): void {
    this.forget(outlet);
    outlet.close();
  }

  close(): void {
    for (const o of [...this.viewersOf.keys()]) this.leave(o);
    for (const r of Object.values(this.renditions)) {
      r.encoder?.close();
      r.encoder = null;
    }
  }
}

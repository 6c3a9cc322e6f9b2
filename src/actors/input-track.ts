/**
 * Input tracks: frames a session's owner sends into the model (a webcam, a video).
 *
 * Each declared track is one slot of shared memory, sized for one frame: the main thread
 * writes the newest frame into it and the worker reads it when the model asks. Newest wins by
 * construction (a write replaces the last frame), memory is one frame per track whatever the
 * client's rate, and no message crosses the threads per input frame. A sequence number makes it
 * a seqlock: odd while a write is in progress, so a reader never returns a torn frame.
 */
import type { InputFrame, InputTrackSpec } from '../model/api.ts';
import { bytesPerPixel } from '../gpu/frames.ts';

const SEQ = 0; // even: stable, odd: being written; 0: empty
const HEADER_BYTES = 16; // Int32 seq + pad, then a Float64 timestamp at byte 8

export interface TrackShare {
  readonly name: string;
  readonly spec: InputTrackSpec;
  readonly buffer: SharedArrayBuffer;
}

export function frameBytes(spec: InputTrackSpec): number {
  return spec.width * spec.height * bytesPerPixel(spec.format);
}

export function createTrackShare(name: string, spec: InputTrackSpec): TrackShare {
  return { name, spec, buffer: new SharedArrayBuffer(HEADER_BYTES + frameBytes(spec)) };
}

/** The main thread's side: write the newest frame, or clear the slot. */
export class TrackWriter {
  private readonly seq: Int32Array;
  private readonly time: Float64Array;
  private readonly pixels: Uint8Array;

  constructor(readonly share: TrackShare) {
    this.seq = new Int32Array(share.buffer, 0, 1);
    this.time = new Float64Array(share.buffer, 8, 1);
    this.pixels = new Uint8Array(share.buffer, HEADER_BYTES);
  }

  /** Returns the frame's number in the session (1, 2, …: what a reader sees as `seq`). */
  write(data: Uint8Array, t: number): number {
    Atomics.add(this.seq, SEQ, 1); // odd: readers wait or retry
    this.pixels.set(data);
    this.time[0] = t;
    const seq = Atomics.add(this.seq, SEQ, 1) + 1; // even again: a new stable frame
    Atomics.notify(this.seq, SEQ);
    return seq / 2;
  }

  /** Empty the slot (between sessions: input is session state). */
  clear(): void {
    Atomics.store(this.seq, SEQ, 0);
    Atomics.notify(this.seq, SEQ);
  }
}

/** The worker's side, one per session: newest frame, or wait for a newer one. */
export class TrackReader {
  private readonly seq: Int32Array;
  private readonly time: Float64Array;
  private readonly pixels: Uint8Array;
  private seen = 0;

  constructor(readonly share: TrackShare) {
    this.seq = new Int32Array(share.buffer, 0, 1);
    this.time = new Float64Array(share.buffer, 8, 1);
    this.pixels = new Uint8Array(share.buffer, HEADER_BYTES);
  }

  /** The newest frame (a copy), or null if none arrived in this session yet. Never blocks. */
  latest(): InputFrame | null {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const before = Atomics.load(this.seq, SEQ);
      if (before === 0) return null;
      if (before % 2 === 1) continue; // a write is in progress: it takes microseconds
      const data = this.pixels.slice();
      const t = this.time[0]!;
      if (Atomics.load(this.seq, SEQ) !== before) continue; // torn: written meanwhile
      this.seen = before;
      const { width, height, format } = this.share.spec;
      return { data, width, height, format, seq: before / 2, t };
    }
    return null;
  }

  /** Wait for a frame newer than the last one returned; null on timeout or stop. */
  async next(timeoutMs: number, signal: AbortSignal): Promise<InputFrame | null> {
    const deadline = performance.now() + timeoutMs;
    while (!signal.aborted) {
      const current = Atomics.load(this.seq, SEQ);
      if (current !== 0 && current % 2 === 0 && current !== this.seen) return this.latest();
      const left = deadline - performance.now();
      if (left <= 0) return null;
      // Wake on a write, on stop (polled every 50 ms: Atomics.waitAsync takes no signal), or at the deadline.
      await Atomics.waitAsync(this.seq, SEQ, current, Math.min(left, 50)).value;
    }
    return null;
  }
}

/**
 * One session of `framehost check`, watched from outside: its frames (shape, hashes, timing),
 * its end, and, for models with input tracks, a feeder that publishes frames while it runs.
 */
import type { Runtime, RuntimeFrame } from '../runtime/runtime.ts';
import type { SessionEnd } from '../machines/types.ts';
import type { InputTrackSpec, PixelFormat } from '../model/api.ts';
import type { ErrorValue } from '../errors.ts';
import { hashBytes } from '../journal/format.ts';

export interface SeenFrame {
  readonly width: number;
  readonly height: number;
  readonly format: PixelFormat;
  readonly count: number;
  readonly bytes: number;
  readonly hash: string;
  /** ms since the start request. */
  readonly at: number;
}

export const shapeOf = (f: SeenFrame): string => `${f.width}×${f.height} ${f.format}${f.count > 1 ? ` ×${f.count}` : ''}`;

export class SessionProbe {
  readonly frames: SeenFrame[] = [];
  readonly commandFailures = new Map<string, ErrorValue>();
  end: (SessionEnd & { frames: number }) | null = null;
  private readonly started = performance.now();
  private readonly off: (() => void)[] = [];
  private waiters: (() => void)[] = [];
  private feeder: ReturnType<typeof setInterval> | undefined;
  /** Frames published on each input track so far: the next one's index. */
  private fed = 0;

  private constructor(
    private readonly runtime: Runtime,
    readonly sessionId: string,
  ) {
    this.off.push(
      runtime.on('frame', (f: RuntimeFrame) => {
        if (f.sessionId !== sessionId) return;
        this.frames.push({
          width: f.width,
          height: f.height,
          format: f.format,
          count: f.count,
          bytes: f.data.byteLength,
          hash: hashBytes(f.data),
          at: performance.now() - this.started,
        });
        this.wake();
      }),
      runtime.on('session.finished', (e) => {
        if (e.sessionId !== sessionId) return;
        this.end = e;
        this.wake();
      }),
      runtime.on('command.failed', (e) => {
        if (e.sessionId === sessionId) this.commandFailures.set(e.requestId, e.error);
      }),
    );
  }

  /** Start a session; a refusal comes back as its error. */
  static start(runtime: Runtime): SessionProbe | ErrorValue {
    const r = runtime.start();
    return r.ok ? new SessionProbe(runtime, r.sessionId) : r.error;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Wait until `n` frames have arrived, the session ended, or `timeoutMs` passed. */
  async waitFrames(n: number, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.frames.length < n && !this.end) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.frames.length >= n;
  }

  /** Publish `frame(track, i)` on every input track every `everyMs` until stopped. */
  feed(inputs: Readonly<Record<string, InputTrackSpec>>, frame: (spec: InputTrackSpec, i: number) => Uint8Array, everyMs = 20): void {
    const tick = (): void => {
      const i = this.fed++;
      for (const [track, spec] of Object.entries(inputs)) {
        this.runtime.publish(track, { data: frame(spec, i), width: spec.width, height: spec.height, format: spec.format });
      }
    };
    if (Object.keys(inputs).length === 0) return;
    tick();
    this.feeder = setInterval(tick, everyMs);
  }

  /** Ask the session to stop and wait until it is over; the time it took. */
  async stop(): Promise<{ end: SessionEnd | null; ms: number; refused?: ErrorValue }> {
    const t0 = performance.now();
    const r = this.end ? { ok: true as const } : this.runtime.stop();
    const end = await this.runtime.whenSessionOver(this.sessionId);
    this.close();
    return { end, ms: performance.now() - t0, ...(r.ok ? {} : { refused: r.error }) };
  }

  close(): void {
    if (this.feeder) clearInterval(this.feeder);
    this.feeder = undefined;
    for (const off of this.off.splice(0)) off();
  }
}

/** A fixed picture for input tracks (the same in every session): a diagonal gradient. */
export function patternFrame(spec: InputTrackSpec): Uint8Array {
  const channels = spec.format === 'rgba' ? 4 : 3;
  const data = new Uint8Array(spec.width * spec.height * channels);
  for (let y = 0; y < spec.height; y++) {
    for (let x = 0; x < spec.width; x++) {
      const i = (y * spec.width + x) * channels;
      data[i] = (x * 255) / spec.width;
      data[i + 1] = (y * 255) / spec.height;
      data[i + 2] = ((x + y) * 127) / (spec.width + spec.height);
      if (channels === 4) data[i + 3] = 255;
    }
  }
  return data;
}

/** Noise for the random session's input tracks. */
export function noiseFrame(spec: InputTrackSpec, random: () => number): Uint8Array {
  const data = new Uint8Array(spec.width * spec.height * (spec.format === 'rgba' ? 4 : 3));
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256);
  return data;
}

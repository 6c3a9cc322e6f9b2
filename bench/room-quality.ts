/**
 * The room sender's bitrate and luma PSNR, in process (no WebRTC): frames are encoded by the
 * room's own encoder (src/media/vp8-encoder.ts) at the room's default bitrate
 * (src/media/bitrate.ts) and 60 fps, decoded again with node-av's VP8 decoder, and each decoded Y
 * plane is compared with the Y plane that was fed to libvpx. A keyframe is forced at KEY_AT (as a
 * late joiner's would be): its size against the delta frames', and its PSNR against the frames
 * around it.
 *
 * Two pictures: the demo world (gray-scott, frames taken from the runtime) and a natural-looking
 * moving one, made here deterministically: a smooth value-noise field (three octaves, 64, 16 and
 * 4 px, seeded) tinted into RGB, panned 1 px a frame right and down, like a slow camera pan over
 * a textured surface.
 */
import { pino } from 'pino';
import { AV_CODEC_ID_VP8, Codec, CodecContext, Frame, Packet } from 'node-av';
import { createRuntime } from '../src/runtime/runtime.ts';
import { encoderTargetKbps, scaledBitrateKbps } from '../src/media/bitrate.ts';
import { Vp8Encoder } from '../src/media/vp8-encoder.ts';
import { median, r2, r3 } from './stats.ts';

export const FRAMES = 480;
/** Frames before this are the rate control's settling (the first keyframe and its aftermath). */
const SETTLE = 60;
const KEY_AT = 360;
const AROUND = 10;

export interface QualityRow {
  readonly picture: 'demo' | 'pan';
  readonly size: number;
  readonly target_kbps: number;
  readonly mbit_s: number;
  readonly y_psnr_db_mean: number;
  readonly y_psnr_db_min: number;
  readonly keyframe_bytes: number;
  readonly delta_frame_bytes_median: number;
  readonly keyframe_psnr_db: number;
  readonly around_keyframe_psnr_db: number;
  readonly frames: number;
}

/** The demo world's frames (RGBA), as the runtime makes them. */
async function demoFrames(size: number, count: number, threads: number | undefined): Promise<Uint8Array[]> {
  const rt = await createRuntime({ modelOptions: { size, fps: 0 }, ort: threads ? { threads } : {}, logger: pino({ level: 'warn' }) });
  await rt.ready();
  const frames: Uint8Array[] = [];
  const done = new Promise<void>((resolve) => {
    rt.on('frame', (f) => {
      if (f.format !== 'rgba') throw new Error(`expected rgba frames, got ${f.format}`);
      if (frames.length < count) frames.push(f.data.slice());
      if (frames.length === count) resolve();
    });
  });
  rt.start();
  await done;
  rt.stop();
  await rt.shutdown();
  return frames;
}

/** A seeded value-noise lattice, smoothly interpolated (smoothstep), sampled at (x, y). */
function noise(cell: number, seed: number): (x: number, y: number) => number {
  const hash = (i: number, j: number): number => {
    let h = (i * 374761393 + j * 668265263 + seed * 982451653) | 0;
    h = Math.imul(h ^ (h >>> 13), 1274126177);
    return ((h ^ (h >>> 16)) >>> 0) / 0xffffffff;
  };
  const smooth = (t: number): number => t * t * (3 - 2 * t);
  return (x, y) => {
    const i = Math.floor(x / cell);
    const j = Math.floor(y / cell);
    const u = smooth(x / cell - i);
    const v = smooth(y / cell - j);
    const top = hash(i, j) * (1 - u) + hash(i + 1, j) * u;
    const bottom = hash(i, j + 1) * (1 - u) + hash(i + 1, j + 1) * u;
    return top * (1 - v) + bottom * v;
  };
}

/** The panning picture: one large field made once, each frame a window moved 1 px right and down. */
function panFrames(size: number, count: number): Uint8Array[] {
  const side = size + count;
  const octaves = [noise(64, 1), noise(16, 2), noise(4, 3)];
  const tint = noise(128, 4);
  const field = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const l = 0.6 * octaves[0]!(x, y) + 0.3 * octaves[1]!(x, y) + 0.1 * octaves[2]!(x, y);
      const t = tint(x, y);
      const i = (y * side + x) * 3;
      field[i] = Math.round(255 * l * (0.7 + 0.3 * t));
      field[i + 1] = Math.round(255 * l);
      field[i + 2] = Math.round(255 * l * (1 - 0.3 * t));
    }
  }
  return Array.from({ length: count }, (_, k) => {
    const out = new Uint8Array(size * size * 4);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const s = ((y + k) * side + x + k) * 3;
        const d = (y * size + x) * 4;
        out[d] = field[s]!;
        out[d + 1] = field[s + 1]!;
        out[d + 2] = field[s + 2]!;
        out[d + 3] = 255;
      }
    }
    return out;
  });
}

/** node-av's VP8 decoder: a VP8 frame in, its Y plane (tightly packed) out. */
class Vp8Decoder {
  private readonly ctx = new CodecContext();
  private readonly packet = new Packet();
  private readonly frame = new Frame();

  constructor(private readonly width: number, private readonly height: number) {
    const codec = Codec.findDecoder(AV_CODEC_ID_VP8);
    if (!codec) throw new Error('this FFmpeg build has no VP8 decoder');
    this.ctx.allocContext3(codec);
    this.ctx.threadCount = 1;
    if (this.ctx.open2Sync(codec, null) < 0) throw new Error('VP8 decoder did not open');
    this.packet.alloc();
    this.frame.alloc();
  }

  luma(vp8: Buffer): Uint8Array {
    this.packet.data = vp8;
    if (this.ctx.sendPacketSync(this.packet) < 0) throw new Error('VP8 decode failed');
    this.packet.unref();
    if (this.ctx.receiveFrameSync(this.frame) < 0) throw new Error('the decoder gave no frame');
    const plane = this.frame.data![0]!;
    const stride = this.frame.linesize[0]!;
    const y = new Uint8Array(this.width * this.height);
    for (let row = 0; row < this.height; row++) y.set(plane.subarray(row * stride, row * stride + this.width), row * this.width);
    this.frame.unref();
    return y;
  }

  close(): void {
    this.packet.free();
    this.frame.free();
    this.ctx.freeContext();
  }
}

function psnr(a: Uint8Array, b: Uint8Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    se += d * d;
  }
  const mse = se / a.length;
  return mse === 0 ? 99 : 10 * Math.log10((255 * 255) / mse);
}

/** Encode and decode every frame: per frame its bytes, whether a keyframe, and its Y-PSNR. */
function codecPass(frames: readonly Uint8Array[], size: number, kbps: number): { bytes: number; key: boolean; psnr: number }[] {
  const encoder = new Vp8Encoder({ width: size, height: size, fps: 60, bitrateKbps: encoderTargetKbps(kbps), gopFrames: 600 }); // as the room aims
  const decoder = new Vp8Decoder(size, size);
  const out: { bytes: number; key: boolean; psnr: number }[] = [];
  try {
    frames.forEach((rgba, k) => {
      if (k === KEY_AT) encoder.requestKeyframe();
      const encoded = encoder.encode(rgba);
      if (encoded.length !== 1) throw new Error(`frame ${k}: ${encoded.length} encoded frames (lag 0 gives one)`);
      const fed = encoder.input.subarray(0, size * size);
      out.push({ bytes: encoded[0]!.data.length, key: encoded[0]!.key, psnr: psnr(fed, decoder.luma(encoded[0]!.data)) });
    });
  } finally {
    decoder.close();
    encoder.close();
  }
  return out;
}

function summarize(picture: QualityRow['picture'], size: number, kbps: number, f: { bytes: number; key: boolean; psnr: number }[]): QualityRow {
  const steady = f.slice(SETTLE);
  const bytes = steady.reduce((a, x) => a + x.bytes, 0);
  const around = [...f.slice(KEY_AT - AROUND, KEY_AT), ...f.slice(KEY_AT + 1, KEY_AT + 1 + AROUND)];
  return {
    picture,
    size,
    target_kbps: kbps,
    mbit_s: r3((bytes * 8 * 60) / steady.length / 1e6),
    y_psnr_db_mean: r2(steady.reduce((a, x) => a + x.psnr, 0) / steady.length),
    y_psnr_db_min: r2(Math.min(...steady.map((x) => x.psnr))),
    keyframe_bytes: f[KEY_AT]!.key ? f[KEY_AT]!.bytes : -1,
    delta_frame_bytes_median: median(steady.filter((x) => !x.key).map((x) => x.bytes)),
    keyframe_psnr_db: r2(f[KEY_AT]!.psnr),
    around_keyframe_psnr_db: r2(around.reduce((a, x) => a + x.psnr, 0) / around.length),
    frames: f.length,
  };
}

export async function roomQuality(sizes: readonly number[], threads: number | undefined): Promise<QualityRow[]> {
  const rows: QualityRow[] = [];
  for (const size of sizes) {
    const kbps = scaledBitrateKbps(size * size);
    rows.push(summarize('demo', size, kbps, codecPass(await demoFrames(size, FRAMES, threads), size, kbps)));
    rows.push(summarize('pan', size, kbps, codecPass(panFrames(size, FRAMES), size, kbps)));
    for (const r of rows.slice(-2)) process.stderr.write(`  room quality ${r.picture} ${size}²: ${r.mbit_s} Mbit/s, Y-PSNR ${r.y_psnr_db_mean} dB (min ${r.y_psnr_db_min}); keyframe ${r.keyframe_bytes} B vs ${r.delta_frame_bytes_median} B, ${r.keyframe_psnr_db} vs ${r.around_keyframe_psnr_db} dB\n`);
  }
  return rows;
}

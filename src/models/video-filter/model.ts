/**
 * The second built-in model: a video-to-video filter. The session owner's client publishes
 * frames on the `camera` input track (256×256 RGBA); each one comes out as edges or toon
 * shading mixed with the original. Without a camera it filters a moving test pattern, so the
 * output is alive from the first frame.
 *
 * Run it: `framehost serve --model video-filter`.
 */
import * as ort from 'onnxruntime-node';
import { defineModel } from '../../model/api.ts';
import { t } from '../../model/schema.ts';
import { tensorToFrame } from '../../gpu/frames.ts';
import { buildVideoFilterGraph } from './graph.ts';

export const SIZE = 256;
const MODES = ['edges', 'toon', 'original'] as const;
type Mode = (typeof MODES)[number];

/** Concentric rings drifting over time: something to filter before a camera arrives. */
function testPattern(frame: number): Uint8Array {
  const data = new Uint8Array(SIZE * SIZE * 4);
  const cx = SIZE / 2 + Math.sin(frame / 20) * 60;
  const cy = SIZE / 2 + Math.cos(frame / 27) * 60;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const ring = Math.floor(Math.hypot(x - cx, y - cy) / 16) % 2;
      const i = (y * SIZE + x) * 4;
      data[i] = ring ? 230 : 40;
      data[i + 1] = ring ? 180 : 60;
      data[i + 2] = ring ? 90 : 140;
      data[i + 3] = 255;
    }
  }
  return data;
}

function weightsFor(mode: Mode, strength: number): Float32Array {
  switch (mode) {
    case 'edges':
      return new Float32Array([strength, 0, 1 - strength]);
    case 'toon':
      return new Float32Array([0, strength, 1 - strength]);
    case 'original':
      return new Float32Array([0, 0, 1]);
  }
}

export default defineModel({
  name: 'video-filter',
  version: '1.0.0',
  description: 'Edges or toon shading of the video you send on the camera track.',
  inputs: { camera: { width: SIZE, height: SIZE, format: 'rgba', description: 'the picture to filter' } },

  async load({ createSession }) {
    const onnx = await createSession(buildVideoFilterGraph());
    await onnx.session.run({ image: new ort.Tensor('uint8', testPattern(0), [SIZE, SIZE, 4]), weights: new ort.Tensor('float32', weightsFor('edges', 1), [3]) });
    return { onnx };
  },

  // `changed`: a command altered the filter, so the last camera frame is worth filtering again.
  createSessionState: () => ({ mode: 'edges' as Mode, strength: 1, changed: false }),

  commands: {
    mode: {
      description: 'What the filter does.',
      args: { name: t.enum(MODES, { description: 'edges, toon or original' }) },
      handler: ({ name }, { state }) => {
        state.mode = name as Mode;
        state.changed = true;
      },
    },
    strength: {
      description: 'How much of the effect is mixed in.',
      args: { value: t.float({ min: 0, max: 1, default: 1, description: '0: original, 1: full effect' }) },
      handler: ({ value }, { state }) => {
        state.strength = value ?? 1;
        state.changed = true;
      },
    },
  },

  async loop(ctx) {
    const camera = ctx.input('camera');
    let tick = 0;
    while (!ctx.shouldStop()) {
      // One output per camera frame; without a camera, ~30 fps of test pattern. A camera that
      // pauses gives no repeats, unless a command changed the filter.
      const fresh = await camera.next(33);
      if (ctx.shouldStop()) break;
      const last = fresh ?? camera.latest();
      if (!fresh && last && !ctx.state.changed) continue;
      ctx.state.changed = false;
      const pixels = last?.data ?? testPattern(tick++);
      const out = await ctx.model.onnx.session.run({
        image: new ort.Tensor('uint8', pixels, [SIZE, SIZE, 4]),
        weights: new ort.Tensor('float32', weightsFor(ctx.state.mode, ctx.state.strength), [3]),
      });
      ctx.emit(tensorToFrame(out.rgba!));
    }
  },
});

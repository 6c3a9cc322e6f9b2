/**
 * The third built-in model: a VAE-decoder-shaped network (graph.ts) decoding a drifting seeded
 * latent, one RGB frame per decode. A GPU workload the size of a real one: ~0.3 s a frame at
 * 256² on one CPU thread here. Its frames are noise (random weights): it is for measuring, not
 * for looking at.
 *
 * Run it: `framehost serve --model vae-decoder --provider webgpu`.
 * Options: size (multiple of 8, 64-1024, default 256), fps cap (0 = as fast as it runs, default 0).
 */
import * as ort from 'onnxruntime-node';
import { defineModel } from '../../model/api.ts';
import { tensorToFrame } from '../../gpu/frames.ts';
import type { OnnxSession } from '../../gpu/session.ts';
import { buildDecoderGraph, decoderLatent } from './graph.ts';

interface Decoder {
  readonly onnx: OnnxSession;
  readonly size: number;
  readonly fps: number;
}

function option(options: Readonly<Record<string, unknown>>, key: string, fallback: number, min: number, max: number, step = 1): number {
  const n = options[key] === undefined ? fallback : Number(options[key]);
  if (!Number.isInteger(n) || n < min || n > max || n % step !== 0) throw new RangeError(`model option ${key} must be an integer in ${min}..${max}${step > 1 ? `, a multiple of ${step}` : ''}, got ${String(options[key])}`);
  return n;
}

export const latentTensor = (size: number, t: number): ort.Tensor => new ort.Tensor('float32', decoderLatent(size, t), [1, 4, size / 8, size / 8]);

export default defineModel({
  name: 'vae-decoder',
  version: '1.0.0',
  description: 'A TAESD-shaped decoder with seeded random weights: a GPU workload; its frames are noise.',
  deterministic: true,

  async load({ createSession, options }) {
    const size = option(options, 'size', 256, 64, 1024, 8);
    const fps = option(options, 'fps', 0, 0, 1000);
    const onnx = await createSession(buildDecoderGraph(size).onnx, { probe: { latent: latentTensor(size, 0) } });
    await onnx.session.run({ latent: latentTensor(size, 0) }); // warm-up: kernel selection, allocation
    return { onnx, size, fps } satisfies Decoder;
  },

  createSessionState: () => ({ t: 0 }),
  commands: {},

  async loop(ctx) {
    const { model, state } = ctx;
    const interval = model.fps > 0 ? 1000 / model.fps : 0;
    while (!ctx.shouldStop()) {
      const started = performance.now();
      const out = await model.onnx.session.run({ latent: latentTensor(model.size, state.t++) });
      ctx.emit(tensorToFrame(out.rgb!));
      const wait = interval - (performance.now() - started);
      if (wait > 0) await ctx.sleep(wait);
    }
  },
});

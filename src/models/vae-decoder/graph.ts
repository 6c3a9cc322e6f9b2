/**
 * A decoder of the shape of a latent-diffusion VAE decoder (TAESD's: latent [1, 4, H/8, W/8]
 * → RGB [H, W, 3] uint8), with seeded random weights: a workload the size of a real network
 * (~1.22 M parameters, 34 3×3 convolutions, three ×2 upsamplings) for the bench and the GPU
 * check. Its pictures are noise: no trained decoder ships in any npm or Debian package, and
 * framehost keeps downloaded weights out of git.
 *
 *   tanh(x/3)·3 → conv 4→64 → ReLU → 3 blocks → (×2 nearest → conv → 3 blocks) ×2
 *   → ×2 nearest → conv → 1 block → conv 64→3 → [0, 255] bytes, channels last
 * A block is conv → ReLU → conv → ReLU → conv, plus its input, then ReLU.
 */
import { GraphBuilder } from '../graph-builder.ts';
import { seededRandom } from '../../util/random.ts';

const WIDTH = 64;

/** Weights with He scaling (std √(2 / fan-in)), damped in blocks so 10 residual sums stay finite. */
class Weights {
  private readonly random: () => number;
  params = 0;
  constructor(seed: number) {
    this.random = seededRandom(seed);
  }
  /** A normal value by Box-Muller (seeded: the same graph every time). */
  private normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.random())) * Math.cos(2 * Math.PI * this.random());
  }
  conv(g: GraphBuilder, name: string, cin: number, cout: number, damp = 1): { w: string; b: string } {
    const std = (damp * Math.sqrt(2 / (cin * 9))) as number;
    const w = Array.from({ length: cout * cin * 9 }, () => this.normal() * std);
    this.params += w.length + cout;
    return { w: g.constFloat(`${name}_w`, [cout, cin, 3, 3], w), b: g.constFloat(`${name}_b`, [cout], new Array<number>(cout).fill(0)) };
  }
}

function conv(g: GraphBuilder, weights: Weights, x: string, cin: number, cout: number, damp = 1): string {
  const { w, b } = weights.conv(g, g.tmp('conv'), cin, cout, damp);
  return g.op1('Conv', [x, w, b], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
}

function block(g: GraphBuilder, weights: Weights, x: string): string {
  let y = g.op1('Relu', [conv(g, weights, x, WIDTH, WIDTH)]);
  y = g.op1('Relu', [conv(g, weights, y, WIDTH, WIDTH)]);
  y = conv(g, weights, y, WIDTH, WIDTH, 0.3);
  return g.op1('Relu', [g.op1('Add', [x, y])]);
}

export interface DecoderGraph {
  readonly onnx: Uint8Array;
  readonly params: number;
}

/** `size`: the output's side in pixels (a multiple of 8); the latent is size/8 square. */
export function buildDecoderGraph(size: number, seed = 22): DecoderGraph {
  if (!Number.isInteger(size) || size % 8 !== 0 || size < 8) throw new RangeError(`decoder size must be a positive multiple of 8, got ${size}`);
  const g = new GraphBuilder('vae_decoder');
  const weights = new Weights(seed);
  const latent = g.input('latent', 'float', [1, 4, size / 8, size / 8]);
  const three = g.constFloat('three', [], [3]);
  const scales = g.constFloat('up_scales', [4], [1, 1, 2, 2]);
  let x = g.op1('Mul', [g.op1('Tanh', [g.op1('Div', [latent, three])]), three]);
  x = g.op1('Relu', [conv(g, weights, x, 4, WIDTH)]);
  for (let i = 0; i < 3; i++) x = block(g, weights, x);
  for (const blocks of [3, 3, 1]) {
    x = g.op1('Resize', [x, '', scales], { mode: 'nearest' });
    x = conv(g, weights, x, WIDTH, WIDTH);
    for (let i = 0; i < blocks; i++) x = block(g, weights, x);
  }
  const rgb = conv(g, weights, x, WIDTH, 3);
  // [-1, 1] → [0, 255] bytes, then channels last for a frame ([1, H, W, 3]).
  const half = g.constFloat('c127_5', [], [127.5]);
  const lo = g.constFloat('c0', [], [0]);
  const hi = g.constFloat('c255', [], [255]);
  const scaled = g.op1('Clip', [g.op1('Add', [g.op1('Mul', [g.op1('Tanh', [rgb]), half]), half]), lo, hi]);
  g.op1('Transpose', [g.op1('Cast', [scaled], { to: 2 /* UINT8 */ })], { perm: [0, 2, 3, 1] }, 'rgb');
  g.output('rgb', 'uint8', [1, size, size, 3]);
  return { onnx: g.encode(17), params: weights.params };
}

/** A seeded latent, drifting with `t` so that consecutive frames differ. */
export function decoderLatent(size: number, t: number, out = new Float32Array(4 * (size / 8) ** 2)): Float32Array {
  const random = seededRandom(7);
  for (let i = 0; i < out.length; i++) out[i] = 2 * random() - 1 + 0.5 * Math.sin(t / 15 + i * 0.37);
  return out;
}

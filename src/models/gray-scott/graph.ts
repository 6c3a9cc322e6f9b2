/**
 * The Gray-Scott reaction-diffusion world as an ONNX graph: `steps` explicit Euler steps
 * unrolled per frame (a 3×3 Laplacian `Conv` over a `Pad` with wrap-around edges, then the
 * reaction terms, then values below FLUSH_BELOW set to 0), and a colour map (`Gather` into a 256-entry palette) that gives RGBA bytes.
 *
 * inputs:  state [1, 2, H, W] float (U, V)   feed [1]   kill [1]   palette [256, 4] uint8
 * outputs: state_out [1, 2, H, W] float      rgba [H, W, 4] uint8
 *
 * H and W are symbolic: one graph serves every field size.
 */
import { GraphBuilder } from '../graph-builder.ts';

/** Karl Sims' Laplacian weights, with diffusion rates Du = 1.0 and Dv = 0.5 and dt = 1 folded in. */
const LAPLACIAN = [0.05, 0.2, 0.05, 0.2, -1, 0.2, 0.05, 0.2, 0.05];
const DIFFUSION = [1.0, 0.5];

/**
 * Every FLUSH_EVERY steps (and after the last) values below FLUSH_BELOW become 0. A dying
 * pattern (feed 0.01, kill 0.07) decays V geometrically into float32 subnormals, which made a
 * frame 8-9× slower on Intel CPUs. V below 1e-9 is far below one palette level (1/255) and
 * cannot regrow (growth needs u·v > feed + kill), so nothing visible changes. Between two
 * flushes a value falls at most ~20× per step (diffusion into an empty neighbour), so after 4
 * steps it is still ≥ ~1e-14 and one step's v·v ≥ ~1e-28: normal. Flushing every step instead
 * cost 30% of a healthy frame; every 4th costs a few per cent.
 */
export const FLUSH_BELOW = 1e-9;
export const FLUSH_EVERY = 4;

export function buildGrayScottGraph(steps = 8): Uint8Array {
  const g = new GraphBuilder('gray_scott');
  let state = g.input('state', 'float', [1, 2, 'H', 'W']);
  const feed = g.input('feed', 'float', [1]);
  const kill = g.input('kill', 'float', [1]);
  const palette = g.input('palette', 'uint8', [256, 4]);

  const pads = g.constInt64('pads', [8], [0, 0, 1, 1, 0, 0, 1, 1]);
  const kernel = g.constFloat('kernel', [2, 1, 3, 3], DIFFUSION.flatMap((d) => LAPLACIAN.map((w) => w * d)));
  const one = g.constFloat('one', [1], [1]);
  const zero = g.constFloat('zero', [], [0]);
  const unit = g.constFloat('unit', [], [1]);
  const scale = g.constFloat('c255', [], [255]);
  const squeezeAxes = g.constInt64('squeeze_axes', [2], [0, 1]);
  const feedPlusKill = g.op1('Add', [feed, kill]);

  for (let i = 0; i < steps; i++) {
    const padded = g.op1('Pad', [state, pads], { mode: 'wrap' });
    const diffusion = g.op1('Conv', [padded, kernel], { group: 2, kernel_shape: [3, 3] });
    const [u, v] = g.op('Split', [state], { axis: 1 }, 2) as [string, string];
    const uvv = g.op1('Mul', [u, g.op1('Mul', [v, v])]);
    const du = g.op1('Sub', [g.op1('Mul', [feed, g.op1('Sub', [one, u])]), uvv]);
    const dv = g.op1('Sub', [uvv, g.op1('Mul', [feedPlusKill, v])]);
    const reaction = g.op1('Concat', [du, dv], { axis: 1 });
    const next = g.op1('Add', [g.op1('Add', [state, diffusion]), reaction]);
    const last = i === steps - 1;
    const flushed = last || i % FLUSH_EVERY === FLUSH_EVERY - 1 ? g.flushTiny(next, FLUSH_BELOW) : next;
    state = last ? g.op1('Clip', [flushed, zero, unit], {}, 'state_out') : flushed;
  }
  g.output('state_out', 'float', [1, 2, 'H', 'W']);

  // Colour: t = clip(U - V) in [0, 1]: 1 on the empty background, towards 0 where V lives.
  const [u, v] = g.op('Split', [state], { axis: 1 }, 2) as [string, string];
  const t = g.op1('Clip', [g.op1('Sub', [u, v]), zero, unit]);
  const index = g.op1('Cast', [g.op1('Mul', [t, scale])], { to: 7 /* INT64 */ });
  const flat = g.op1('Squeeze', [index, squeezeAxes]);
  g.op1('Gather', [palette, flat], { axis: 0 }, 'rgba');
  g.output('rgba', 'uint8', ['H', 'W', 4]);
  return g.encode(17);
}

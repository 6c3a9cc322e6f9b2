/**
 * The Gray-Scott reaction-diffusion world as an ONNX graph: `steps` explicit Euler steps
 * unrolled per frame (a 3×3 Laplacian `Conv` over a `Pad` with wrap-around edges, then the
 * reaction terms), and a colour map (`Gather` into a 256-entry palette) that gives RGBA bytes.
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
    state = i === steps - 1 ? g.op1('Clip', [next, zero, unit], {}, 'state_out') : next;
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

/**
 * The starter graph that `framehost init` writes as model.ts's `model.onnx`: three sine waves
 * over the picture, one per colour channel, moving with `time` and scaled by `size`.
 *
 * inputs:  time [1] float   size [1] float
 * outputs: rgba [H, W, 4] uint8 (H = W = `side`, fixed)
 */
import { GraphBuilder } from '../graph-builder.ts';

export function buildWavesGraph(side = 256): Uint8Array {
  const g = new GraphBuilder('waves');
  const time = g.input('time', 'float', [1]);
  const size = g.input('size', 'float', [1]);
  const ramp = Array.from({ length: side }, (_, i) => i / side);
  const x = g.constFloat('x', [1, side], ramp);
  const y = g.constFloat('y', [side, 1], ramp);
  const tau = g.constFloat('tau', [], [2 * Math.PI]);
  const half = g.constFloat('half', [], [0.5]);
  const c255 = g.constFloat('c255', [], [255]);
  const slow = g.constFloat('slow', [], [0.7]);
  const zero = g.constFloat('zero', [], [0]);
  const axes = g.constInt64('axes', [1], [2]);

  /** 255 × (0.5 + 0.5 sin(2π (position × size + phase))), as [side, side, 1]. */
  const wave = (position: string, phase: string): string => {
    const angle = g.op1('Mul', [g.op1('Add', [g.op1('Mul', [position, size]), phase]), tau]);
    const level = g.op1('Mul', [g.op1('Add', [g.op1('Mul', [g.op1('Sin', [angle]), half]), half]), c255]);
    const full = g.op1('Add', [level, g.op1('Mul', [g.op1('Add', [x, y]), zero])]); // broadcast to [side, side]
    return g.op1('Unsqueeze', [full, axes]);
  };
  const r = wave(x, time);
  const gr = wave(y, g.op1('Mul', [time, slow]));
  const b = wave(g.op1('Mul', [g.op1('Add', [x, y]), half]), g.op1('Neg', [time]));
  const alpha = g.op1('Add', [g.op1('Mul', [r, zero]), c255]);
  const rgba = g.op1('Concat', [r, gr, b, alpha], { axis: 2 });
  g.op1('Cast', [rgba], { to: 2 /* UINT8 */ }, 'rgba');
  g.output('rgba', 'uint8', [side, side, 4]);
  return g.encode(17);
}

/**
 * A video-to-video filter as an ONNX graph: Sobel edges and a toon shading of an RGBA image,
 * mixed with the original by three weights. Everything happens in the graph; the model's JS
 * only chooses the weights from its commands.
 *
 * inputs:  image [H, W, 4] uint8    weights [3] float (edges, toon, original)
 * outputs: rgba [H, W, 4] uint8
 */
import { GraphBuilder } from '../graph-builder.ts';

export function buildVideoFilterGraph(): Uint8Array {
  const g = new GraphBuilder('video_filter');
  const image = g.input('image', 'uint8', ['H', 'W', 4]);
  const weights = g.input('weights', 'float', [3]);

  const axis0 = g.constInt64('axis0', [1], [0]);
  const axis1 = g.constInt64('axis1', [1], [1]);
  const start0 = g.constInt64('start0', [1], [0]);
  const start1 = g.constInt64('start1', [1], [1]);
  const start2 = g.constInt64('start2', [1], [2]);
  const end1 = g.constInt64('end1', [1], [1]);
  const end2 = g.constInt64('end2', [1], [2]);
  const end3 = g.constInt64('end3', [1], [3]);
  const end4 = g.constInt64('end4', [1], [4]);
  const pads = g.constInt64('pads', [8], [0, 0, 1, 1, 0, 0, 1, 1]);
  const lumaKernel = g.constFloat('luma', [1, 3, 1, 1], [0.299, 0.587, 0.114]);
  const sobelX = g.constFloat('sobel_x', [1, 1, 3, 3], [-1, 0, 1, -2, 0, 2, -1, 0, 1]);
  const sobelY = g.constFloat('sobel_y', [1, 1, 3, 3], [-1, -2, -1, 0, 0, 0, 1, 2, 1]);
  const zero = g.constFloat('zero', [], [0]);
  const one = g.constFloat('one', [], [1]);
  const c255 = g.constFloat('c255', [], [255]);
  const step = g.constFloat('toon_step', [], [48]);
  const edgeScale = g.constFloat('edge_scale', [], [1 / 160]);

  // [H, W, 4] uint8 → [1, 4, H, W] float
  const nchw = g.op1('Unsqueeze', [g.op1('Transpose', [g.op1('Cast', [image], { to: 1 /* FLOAT */ })], { perm: [2, 0, 1] }), axis0]);
  const rgb = g.op1('Slice', [nchw, start0, end3, axis1]);
  const alpha = g.op1('Slice', [nchw, g.constInt64('start3', [1], [3]), end4, axis1]);

  const gray = g.op1('Conv', [rgb, lumaKernel]);
  const padded = g.op1('Pad', [gray, pads], { mode: 'reflect' });
  const gx = g.op1('Conv', [padded, sobelX]);
  const gy = g.op1('Conv', [padded, sobelY]);
  const magnitude = g.op1('Sqrt', [g.op1('Add', [g.op1('Mul', [gx, gx]), g.op1('Mul', [gy, gy])])]);
  const edges = g.op1('Clip', [g.op1('Concat', [magnitude, magnitude, magnitude], { axis: 1 }), zero, c255]);

  const ink = g.op1('Sub', [one, g.op1('Clip', [g.op1('Mul', [magnitude, edgeScale]), zero, one])]);
  const bands = g.op1('Mul', [g.op1('Floor', [g.op1('Div', [rgb, step])]), step]);
  const toon = g.op1('Mul', [bands, ink]);

  const w = (start: string, end: string) => g.op1('Slice', [weights, start, end, axis0]);
  const mixed = g.op1('Add', [
    g.op1('Add', [g.op1('Mul', [edges, w(start0, end1)]), g.op1('Mul', [toon, w(start1, end2)])]),
    g.op1('Mul', [rgb, w(start2, end3)]),
  ]);
  const out = g.op1('Concat', [g.op1('Clip', [mixed, zero, c255]), alpha], { axis: 1 });
  const hwc = g.op1('Transpose', [g.op1('Squeeze', [out, axis0])], { perm: [1, 2, 0] });
  g.op1('Cast', [hwc], { to: 2 /* UINT8 */ }, 'rgba');
  g.output('rgba', 'uint8', ['H', 'W', 4]);
  return g.encode(17);
}

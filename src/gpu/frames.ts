/**
 * Output tensors to frames, without copies: a uint8 tensor shaped [H, W, C] or [N, H, W, C]
 * (C = 3 or 4) becomes a `Frame` that views the tensor's own memory. `emit` then moves that
 * memory to the main thread.
 */
import type { Tensor } from 'onnxruntime-node';
import type { Frame, PixelFormat } from '../model/api.ts';

export function tensorToFrame(tensor: Tensor): Frame {
  if (tensor.type !== 'uint8') throw new TypeError(`a frame tensor must be uint8, got ${tensor.type}`);
  const dims = tensor.dims;
  const [count, height, width, channels] = dims.length === 4 ? dims : dims.length === 3 ? [1, ...dims] : [];
  if (count === undefined || height === undefined || width === undefined || (channels !== 3 && channels !== 4)) {
    throw new TypeError(`a frame tensor must be [H, W, 3|4] or [N, H, W, 3|4], got [${dims.join(', ')}]`);
  }
  const format: PixelFormat = channels === 4 ? 'rgba' : 'rgb';
  return { data: tensor.data as Uint8Array, width, height, format, count };
}

export function bytesPerPixel(format: PixelFormat): number {
  return format === 'rgba' ? 4 : 3;
}

/** Checks a frame's geometry; returns a problem or undefined. Cheap: no pixel is read. */
export function frameProblem(frame: Frame): string | undefined {
  if (!(frame.data instanceof Uint8Array)) return 'frame.data must be a Uint8Array';
  if (frame.format !== 'rgba' && frame.format !== 'rgb') return `frame.format must be "rgba" or "rgb", got ${String(frame.format)}`;
  const count = frame.count ?? 1;
  for (const [name, v] of [['width', frame.width], ['height', frame.height], ['count', count]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 16384) return `frame.${name} must be an integer in 1..16384, got ${String(v)}`;
  }
  const expected = frame.width * frame.height * bytesPerPixel(frame.format) * count;
  if (frame.data.byteLength !== expected) {
    return `frame.data has ${frame.data.byteLength} bytes; ${count}×${frame.width}×${frame.height} ${frame.format} needs ${expected}`;
  }
  return undefined;
}

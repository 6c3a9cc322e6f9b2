/**
 * Pixel conversion between the model's RGBA/RGB frames and the I420 frames libwebrtc encodes
 * and decodes. A frame is converted once however many peers it goes to (spectators share it).
 */
import type { RuntimeFrame } from '../../runtime/runtime.ts';
import type { I420Frame, Wrtc } from './wrtc.ts';

export const i420Bytes = (width: number, height: number): number => width * height + 2 * Math.ceil(width / 2) * Math.ceil(height / 2);

/** Frames already converted, for the other peers of the same frame. */
const converted = new WeakMap<RuntimeFrame, I420Frame>();

/** libyuv wants RGBA; an RGB model frame is widened first. */
function rgbaOf(frame: RuntimeFrame): Uint8Array {
  if (frame.format === 'rgba') return frame.data;
  const pixels = frame.width * frame.height;
  const rgba = new Uint8Array(pixels * 4);
  for (let p = 0; p < pixels; p++) {
    rgba[p * 4] = frame.data[p * 3]!;
    rgba[p * 4 + 1] = frame.data[p * 3 + 1]!;
    rgba[p * 4 + 2] = frame.data[p * 3 + 2]!;
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}

export function toI420(w: Wrtc, frame: RuntimeFrame): I420Frame {
  const cached = converted.get(frame);
  if (cached) return cached;
  // A fresh buffer per frame: libwebrtc may still hold the previous one on its encoder queue.
  const i420: I420Frame = { width: frame.width, height: frame.height, data: new Uint8Array(i420Bytes(frame.width, frame.height)) };
  w.nonstandard.rgbaToI420({ width: frame.width, height: frame.height, data: rgbaOf(frame) }, i420);
  converted.set(frame, i420);
  return i420;
}

export function toRgba(w: Wrtc, frame: I420Frame): Uint8Array {
  const rgba = new Uint8Array(frame.width * frame.height * 4);
  w.nonstandard.i420ToRgba(frame, { width: frame.width, height: frame.height, data: rgba });
  return rgba;
}

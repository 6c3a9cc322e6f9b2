/** An `--input` file's PNG pixels in its track's layout (pngjs decodes to RGBA). */
import { PNG } from 'pngjs';
import { errorValue, type Result } from '../../errors.ts';
import type { InputTrackSpec } from '../../model/api.ts';
import { messageOf } from './events.ts';

/** A PNG file's pixels in the track's layout, or why they do not fit it (`invalid_input`). Pure. */
export function decodeInputPng(bytes: Buffer, spec: InputTrackSpec): Result<{ data: Uint8Array }> {
  let png: { width: number; height: number; data: Buffer };
  try {
    png = PNG.sync.read(bytes); // always 8-bit RGBA, whatever the file's colour type
  } catch (err) {
    return { ok: false, error: errorValue('invalid_input', `not a PNG that can be decoded (${messageOf(err)})`) };
  }
  if (png.width !== spec.width || png.height !== spec.height) {
    return { ok: false, error: errorValue('invalid_input', `the picture is ${png.width}×${png.height}; the track takes ${spec.width}×${spec.height}`) };
  }
  const rgba = new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength);
  if (spec.format === 'rgba') return { ok: true, data: rgba };
  const pixels = spec.width * spec.height;
  const rgb = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) rgb.set(rgba.subarray(p * 4, p * 4 + 3), p * 3);
  return { ok: true, data: rgb };
}

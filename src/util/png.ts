/**
 * Frames as PNG files, the way `framehost headless` and `framehost replay` write them: one
 * encoder and one file-name pattern, so the two commands' folders read the same.
 */
import { PNG } from 'pngjs';

/**
 * The pixel layouts written without conversion. The same union as the model API's PixelFormat,
 * spelled here so that util/ (the bottom layer) needs nothing from model/; the compiler checks
 * at every call that a frame's format fits.
 */
export type PngPixels = 'rgba' | 'rgb';

/** `frame-000042.png`: six digits, so the files sort by name in frame order. */
export function frameFileName(index: number): string {
  return `frame-${String(index).padStart(6, '0')}.png`;
}

/** One frame's pixels as a PNG file's bytes, in the frame's own format (RGBA or RGB). */
export function encodePng(pixels: Uint8Array, width: number, height: number, format: PngPixels): Buffer {
  const png = new PNG(); // no size given: pngjs would allocate a buffer we replace at once
  png.width = width;
  png.height = height;
  png.data = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  return format === 'rgba' ? PNG.sync.write(png) : PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

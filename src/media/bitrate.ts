/**
 * The default video bitrate, scaled to the frame's pixels: about 1 Mbit/s at 256² (VP8 at 60 fps
 * then gives the demo world a luma PSNR near 40 dB) and 2.5 Mbit/s at 512². Bits grow slower than
 * pixels (a larger picture of the same scene has more redundancy), so the rate follows pixels to
 * the power 0.66: 4× the pixels, 2.5× the bits. `--webrtc-max-kbps` replaces it.
 */

/** kbit/s at 256×256 (65,536 pixels). */
export const KBPS_AT_256 = 1000;
const PIXELS_AT_256 = 256 * 256;
const EXPONENT = Math.log(2.5) / Math.log(4);

export function scaledBitrateKbps(pixels: number): number {
  return Math.round(KBPS_AT_256 * Math.pow(Math.max(1, pixels) / PIXELS_AT_256, EXPONENT));
}

/**
 * The size of the last frame the session produced: the bound for a new offer is taken from it
 * (libwebrtc in wrtc 0.10 reads bitrate bounds only from the applied offer, so a peer negotiated
 * before any frame exists gets the 256² figure).
 */
export class FramePixels {
  private pixels = PIXELS_AT_256;

  see(frame: { readonly width: number; readonly height: number }): void {
    this.pixels = frame.width * frame.height;
  }

  /** The bounds for a peer: the flag's maximum when given, else the scaled one, never under the minimum. */
  bounds(minKbps: number, maxKbps: number | null): { minKbps: number; maxKbps: number } {
    return { minKbps, maxKbps: Math.max(minKbps, maxKbps ?? scaledBitrateKbps(this.pixels)) };
  }
}

/**
 * What the room's encoder aims at for a bitrate bound: the bound is a ceiling, and libvpx's CBR
 * lands within about 1% of its target with keyframes counted (the bench's room quality: 1.003
 * Mbit/s for a 1,000 kbit/s target at 256² on the demo world), so it aims 3% under.
 */
export function encoderTargetKbps(boundKbps: number): number {
  return Math.max(1, Math.round(boundKbps * 0.97));
}

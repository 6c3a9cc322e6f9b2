/**
 * A moving picture at 60 fps pushed into a media room until stopped, for the room's own tests
 * (no runtime): every channel changes each frame, so every frame is a new encode.
 */
import type { MediaRoom } from '../../src/media/room.ts';

export class RoomSource {
  readonly rgba: Uint8Array;
  /** Frames pushed so far. */
  pushed = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    room: MediaRoom,
    readonly size: number,
  ) {
    this.rgba = new Uint8Array(size * size * 4);
    this.timer = setInterval(() => {
      const n = this.pushed++;
      for (let p = 0; p < size * size; p++) {
        this.rgba[p * 4] = (p + n * 3) & 255;
        this.rgba[p * 4 + 1] = ((p >> 7) + n) & 255;
        this.rgba[p * 4 + 2] = (p * 7 + n) & 255;
        this.rgba[p * 4 + 3] = 255;
      }
      // A new object and buffer per frame, as the runtime makes them: the room's cache is per frame.
      room.push({ data: this.rgba.slice(), width: size, height: size });
    }, 1000 / 60);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

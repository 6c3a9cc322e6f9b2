/**
 * Frames in flight from the worker to the main thread: posted here, counted as consumed there
 * (a shared int32 slot), never more than `max` apart.
 */
import { CONTROL_CONSUMED, CONTROL_STOP } from './protocol.ts';

export class FrameWindow {
  private posted = 0;

  constructor(
    /** The shared control slots (src/actors/protocol.ts). */
    private readonly control: Int32Array,
    private readonly max: number,
  ) {}

  /**
   * Whether the window is full. Both counters are int32 and wrap (after 2^31 frames: months at a
   * few hundred fps); the difference, taken in int32 too, stays right across the wrap.
   */
  full(): boolean {
    return ((this.posted - Atomics.load(this.control, CONTROL_CONSUMED)) | 0) >= this.max;
  }

  /** Blocks the thread until there is room or a stop is asked for (replay: every frame is written). */
  waitForRoom(): void {
    while (this.full() && Atomics.load(this.control, CONTROL_STOP) === 0) {
      Atomics.wait(this.control, CONTROL_CONSUMED, Atomics.load(this.control, CONTROL_CONSUMED), 50);
    }
  }

  /** Counts one frame posted. */
  post(): void {
    this.posted = (this.posted + 1) | 0;
  }
}

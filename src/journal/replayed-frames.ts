/**
 * The replayed session's frames as they arrive: hashed where the journal recorded a hash,
 * written as PNG when there is a folder, and stopped once past the recorded length.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeFrame } from '../runtime/runtime.ts';
import { bytesPerPixel } from '../gpu/frames.ts';
import { encodePng, frameFileName } from '../util/png.ts';
import { hashBytes } from './format.ts';
import type { ParsedJournal } from './replay-script.ts';

export class ReplayedFrames {
  /** Replayed hashes by frame index, for the indexes the journal has one for. */
  readonly hashes = new Map<number, string>();
  private made = 0;
  private writeError: unknown;
  private overran = false;

  constructor(
    private readonly journal: Pick<ParsedJournal, 'hashes' | 'expectedFrames' | 'end'>,
    /** Folder for the frames; undefined: hashes only. */
    private readonly out: string | undefined,
    /** Ends the replay (called once, when it runs past the recorded frames). */
    private readonly stop: () => void,
  ) {}

  /** Frames made so far. */
  get frames(): number {
    return this.made;
  }

  /** Whether the replay ran past the recorded length and was stopped. */
  get overrun(): boolean {
    return this.overran;
  }

  /** The first frame that could not be written, if any. */
  get error(): unknown {
    return this.writeError;
  }

  frame(f: RuntimeFrame): void {
    const { journal, out } = this;
    if (journal.hashes.has(f.seq)) this.hashes.set(f.seq, hashBytes(f.data));
    const size = f.width * f.height * bytesPerPixel(f.format);
    for (let i = 0; out !== undefined && i < f.count; i++) {
      try {
        writeFileSync(join(out, frameFileName(f.seq + i)), encodePng(f.data.subarray(i * size, (i + 1) * size), f.width, f.height, f.format));
      } catch (err) {
        this.writeError ??= err;
      }
    }
    this.made = f.seq + f.count;
    // A replay that diverges may never reach the recorded stop: cap it at the recorded length.
    if (this.made > journal.expectedFrames && !this.overran && journal.end?.reason !== 'returned' && journal.end?.reason !== 'error') {
      this.overran = true;
      this.stop();
    }
  }
}

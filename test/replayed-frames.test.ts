import { describe, expect, it } from 'vitest';
import { ReplayedFrames } from '../src/journal/replayed-frames.ts';
import { hashBytes, type JournalLine } from '../src/journal/format.ts';
import type { RuntimeFrame } from '../src/runtime/runtime.ts';

type FrameLine = Extract<JournalLine, { type: 'frame' }>;
const line = (seq: number): FrameLine => ({ type: 'frame', seq, count: 1, width: 1, height: 1, format: 'rgba', hash: 'h' });
const frame = (seq: number, count = 1): RuntimeFrame => ({ sessionId: 's', seq, count, width: 1, height: 1, format: 'rgba', t: 0, inferMs: 0, data: new Uint8Array(4 * count).fill(seq) });

describe('ReplayedFrames', () => {
  it('hashes the recorded indexes, counts the frames, and stops once past a stopped session', () => {
    let stops = 0;
    const journal = { hashes: new Map([[0, line(0)], [2, line(2)]]), expectedFrames: 3, end: null };
    const frames = new ReplayedFrames(journal, undefined, () => stops++);
    frames.frame(frame(0));
    frames.frame(frame(1, 2));
    expect([frames.frames, frames.overrun, stops]).toEqual([3, false, 0]);
    expect([...frames.hashes.keys()]).toEqual([0]); // frame 2 came inside the block at 1
    frames.frame(frame(3));
    frames.frame(frame(4));
    expect([frames.frames, frames.overrun, stops]).toEqual([5, true, 1]);
    expect(frames.hashes.get(0)).toBe(hashBytes(new Uint8Array(4)));
    expect(frames.error).toBeUndefined();
  });
});

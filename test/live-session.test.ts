import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { LiveSession } from '../src/runtime/live-session.ts';

describe('LiveSession', () => {
  it('counts from zero and remembers when the owner left', () => {
    const s = new LiveSession('s1', pino({ enabled: false }));
    expect([s.frames, s.dropped, s.inputs, s.awayAt]).toEqual([0, 0, 0, null]);
    s.addFrames(3);
    s.addFrames(2);
    s.addDropped(1);
    s.addInput();
    s.ownerPresent(false, 1234);
    expect([s.frames, s.dropped, s.inputs, s.awayAt]).toEqual([5, 1, 1, 1234]);
    s.ownerPresent(true);
    expect(s.awayAt).toBeNull();
    expect(s.journal).toBeUndefined();
  });
});

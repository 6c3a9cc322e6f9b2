import { describe, expect, it } from 'vitest';
import { FrameWindow } from '../src/actors/frame-window.ts';
import { CONTROL_CONSUMED, CONTROL_SLOTS, CONTROL_STOP } from '../src/actors/protocol.ts';

describe('FrameWindow', () => {
  it('is full at max frames posted and not yet consumed', () => {
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
    const w = new FrameWindow(control, 2);
    w.post();
    expect(w.full()).toBe(false);
    w.post();
    expect(w.full()).toBe(true);
    Atomics.store(control, CONTROL_CONSUMED, 1);
    expect(w.full()).toBe(false);
  });

  it('waits for room no longer than a stop', () => {
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
    const w = new FrameWindow(control, 1);
    w.post();
    Atomics.store(control, CONTROL_STOP, 1);
    w.waitForRoom(); // returns at once: a stop was asked for
    expect(w.full()).toBe(true);
  });
});

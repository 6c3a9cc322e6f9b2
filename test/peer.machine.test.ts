/** The WebRTC peer's lifecycle chart, on snapshots and a fake clock (no libwebrtc). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor } from 'xstate';
import { peerMachine } from '../src/machines/peer.machine.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

const peer = () => createActor(peerMachine, { input: { connectTimeoutMs: 1000 } }).start();

describe('peer chart', () => {
  it('answers one offer at a time, connects, renegotiates, closes with a reason', () => {
    const a = peer();
    expect(a.getSnapshot().value).toBe('new');
    a.send({ type: 'peer.offer' });
    expect(a.getSnapshot().value).toBe('answering');
    expect(a.getSnapshot().can({ type: 'peer.offer' }), 'a second offer while answering').toBe(false);
    a.send({ type: 'peer.answered' });
    expect(a.getSnapshot().value).toBe('connecting');
    a.send({ type: 'peer.connected' });
    expect(a.getSnapshot().value).toBe('connected');
    vi.advanceTimersByTime(5000); // no timeout once connected
    expect(a.getSnapshot().value).toBe('connected');
    a.send({ type: 'peer.offer' });
    a.send({ type: 'peer.answer_failed' }); // a bad renegotiation changes nothing
    expect(a.getSnapshot().value).toBe('connected');
    a.send({ type: 'peer.close', reason: 'shutdown' });
    expect(a.getSnapshot().status).toBe('done');
    expect(a.getSnapshot().context.closeReason).toBe('shutdown');
  });

  it('a first offer that fails leaves no peer', () => {
    const a = peer();
    a.send({ type: 'peer.offer' });
    a.send({ type: 'peer.answer_failed' });
    expect(a.getSnapshot().status).toBe('done');
    expect(a.getSnapshot().context.closeReason).toBe('closed');
  });

  it('closes with timeout when the connection does not come, and with failed when it fails', () => {
    const a = peer();
    a.send({ type: 'peer.offer' });
    a.send({ type: 'peer.answered' });
    vi.advanceTimersByTime(999);
    expect(a.getSnapshot().value).toBe('connecting');
    vi.advanceTimersByTime(1);
    expect(a.getSnapshot().context.closeReason).toBe('timeout');
    const b = peer();
    b.send({ type: 'peer.offer' });
    b.send({ type: 'peer.connected' }); // connected while the answer is still being set
    b.send({ type: 'peer.answered' });
    expect(b.getSnapshot().value).toBe('connected');
    b.send({ type: 'peer.failed' });
    expect(b.getSnapshot().context.closeReason).toBe('failed');
  });
});

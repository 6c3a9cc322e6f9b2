/**
 * The stream router's gate (a fleet node's lease) in front of every sink, WebRTC tracks
 * included: a WebRTC sink has no later point before the encoder, so the router's own check is
 * the only thing between a fenced node and the viewer. No sockets, no runtime: a fake sink
 * records what it is offered, and the gate is a flag the test flips.
 */
import { describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io';
import { StreamRouter, type StreamSink } from '../src/transport/socket/stream.ts';
import type { RuntimeFrame } from '../src/runtime/runtime.ts';
import type { ClientToServerEvents, ServerToClientEvents, SocketData } from '../src/transport/socket/events.ts';
import { quietLogger } from './helpers/runtime.ts';

type FramehostSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/** Just what the router touches of a socket: its id, and emit (for stream:detached). */
const fakeSocket = (id: string): FramehostSocket => ({ id, emit: () => true }) as unknown as FramehostSocket;

const frame = (seq: number): RuntimeFrame => ({ sessionId: 's', seq, width: 2, height: 2, format: 'rgba', count: 1, t: Date.now(), inferMs: 0, data: new Uint8Array(16) });

describe('StreamRouter.frame and the gate', () => {
  it('offers a WebRTC sink no frame while the gate refuses, and every frame again once it allows', () => {
    let open = true;
    let asked = 0;
    const offered: number[] = [];
    const socket = fakeSocket('viewer');
    const sink: StreamSink = { socket, offer: (f) => offered.push(f.seq), close: () => undefined };
    const router = new StreamRouter({ sent: () => undefined, dropped: () => undefined }, quietLogger(), {
      mode: 'broadcast',
      maxViewers: 4,
      mediaSink: () => sink,
      mayLeave: () => (asked++, open),
    });
    expect(router.attach(socket, { encoding: 'webrtc', quality: 80, flow: 'socket' })).toEqual({ ok: true });
    router.frame(frame(0));
    router.frame(frame(1));
    open = false; // the lease can no longer be proven
    router.frame(frame(2));
    router.frame(frame(3));
    open = true;
    router.frame(frame(4));
    expect(offered).toEqual([0, 1, 4]);
    expect(asked).toBe(5); // once per frame, not once per sink or once per attach
  });
});

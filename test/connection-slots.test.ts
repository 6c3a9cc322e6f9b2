/**
 * The connection limit's own count (src/transport/socket/connection-slots.ts), on stand-in sockets: the
 * two ways a slot comes back (the socket's `disconnect`, or its connection closing while the
 * handshake is still in the middleware, when no `disconnect` ever comes), each exactly once.
 * Over real sockets: test/transport.test.ts and the fuzz's connection bursts.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'socket.io';
import { describe, expect, it } from 'vitest';
import { ConnectionSlots } from '../src/transport/socket/connection-slots.ts';

/** A socket as far as the slots use it: its own events and its engine connection's. */
function fakeSocket(): { socket: Socket; events: EventEmitter; conn: EventEmitter } {
  const events = new EventEmitter();
  const conn = new EventEmitter();
  return { socket: Object.assign(events, { conn }) as unknown as Socket, events, conn };
}

describe('ConnectionSlots', () => {
  it('takes up to the limit, refuses past it, and tells the count after every change', () => {
    const seen: number[] = [];
    const slots = new ConnectionSlots(3, (n) => seen.push(n));
    const sockets = Array.from({ length: 5 }, fakeSocket);
    expect(sockets.map((s) => slots.take(s.socket))).toEqual([true, true, true, false, false]);
    expect(slots.count).toBe(3);
    sockets[0]!.events.emit('disconnect', 'client namespace disconnect');
    expect(slots.count).toBe(2);
    expect(slots.take(sockets[3]!.socket)).toBe(true);
    expect(seen).toEqual([1, 2, 3, 2, 3]);
  });

  it('gives a slot back when the connection closes before the socket ever connected (no disconnect)', () => {
    const slots = new ConnectionSlots(1);
    const s = fakeSocket();
    expect(slots.take(s.socket)).toBe(true);
    s.conn.emit('close', 'transport close');
    expect(slots.count).toBe(0);
    expect(slots.take(fakeSocket().socket)).toBe(true);
  });

  it('gives a slot back once, however many of its events come, and drops its listeners', () => {
    const slots = new ConnectionSlots(2);
    const s = fakeSocket();
    slots.take(s.socket);
    slots.take(fakeSocket().socket);
    s.events.emit('disconnect', 'transport close');
    s.conn.emit('close', 'transport close');
    s.events.emit('disconnect', 'again');
    expect(slots.count).toBe(1);
    expect(s.events.listenerCount('disconnect')).toBe(0);
    expect(s.conn.listenerCount('close')).toBe(0);
  });

  // A client may leave the main namespace and join it again on the same connection: each join is
  // a new socket, and each leave gives its slot back, or a client could use the limit up alone.
  it('counts each socket of one connection apart', () => {
    const slots = new ConnectionSlots(1);
    const conn = new EventEmitter();
    for (let i = 0; i < 10; i++) {
      const events = new EventEmitter();
      const socket = Object.assign(events, { conn }) as unknown as Socket;
      expect(slots.take(socket), `join ${i}`).toBe(true);
      events.emit('disconnect', 'client namespace disconnect');
    }
    expect(slots.count).toBe(0);
    expect(conn.listenerCount('close')).toBe(0);
  });
});

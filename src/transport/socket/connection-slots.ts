/**
 * The connection limit, counted here rather than read from `io.engine.clientsCount`: that
 * count includes connections still in their handshake, so a burst against an empty server
 * saw itself as over the limit and refused everyone (0 of 257 admitted in some runs).
 *
 * A socket takes a slot in the handshake middleware, which runs synchronously, so checking
 * and taking cannot interleave: a burst admits exactly up to the limit, whatever the timing.
 * The slot is given back exactly once, when the socket disconnects or when its connection
 * closes first (a socket whose client leaves during the handshake never connects, so it never
 * emits `disconnect`).
 */
import type { Socket } from 'socket.io';

export class ConnectionSlots {
  private held = 0;

  /** `changed` is told the count after every take and release (the connections gauge). */
  constructor(
    readonly limit: number,
    private readonly changed: (held: number) => void = () => undefined,
  ) {}

  get count(): number {
    return this.held;
  }

  /** Take a slot for `socket`; false when every slot is taken. */
  take(socket: Socket): boolean {
    if (this.held >= this.limit) return false;
    this.held++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.held--;
      socket.off('disconnect', release);
      socket.conn.off('close', release);
      this.changed(this.held);
    };
    socket.once('disconnect', release);
    socket.conn.once('close', release);
    this.changed(this.held);
    return true;
  }
}

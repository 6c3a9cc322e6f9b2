/**
 * Limits per user (a token's `sub`) besides the ones per connection: one user with 100 sockets
 * is one user. Each `sub` holds at most `maxConnections` connections at once and shares one
 * request bucket over all of them. A `sub`'s entry lives while it has a connection, so memory
 * follows the connected users, not everyone ever seen.
 *
 * Connections without a `sub` (open and shared-secret modes) are limited per connection only.
 */
import type { Socket } from 'socket.io';
import { TokenBucket } from './rate-limit.ts';

interface Subject {
  connections: number;
  readonly bucket: TokenBucket;
}

export interface SubjectLimitSettings {
  readonly maxConnections: number;
  readonly requestsPerSecond: number;
  readonly requestBurst: number;
}

export class SubjectLimits {
  private readonly subjects = new Map<string, Subject>();
  /** Which user each counted socket belongs to; leaving removes it, so a second leave counts nothing. */
  private readonly members = new Map<string, string>();

  constructor(readonly settings: SubjectLimitSettings) {}

  /** Count `socket` as one of `sub`'s connections until it disconnects; false when `sub` has its maximum. */
  join(sub: string, socket: Socket): boolean {
    let s = this.subjects.get(sub);
    if (s && s.connections >= this.settings.maxConnections) return false;
    if (!s) {
      s = { connections: 0, bucket: new TokenBucket(this.settings.requestsPerSecond, this.settings.requestBurst) };
      this.subjects.set(sub, s);
    }
    s.connections++;
    this.members.set(socket.id, sub);
    // Given back exactly once: at disconnect, or when the connection closes first (a client
    // that leaves during the handshake never emits `disconnect`), as in connection-slots.ts.
    const leave = (): void => {
      socket.off('disconnect', leave);
      socket.conn.off('close', leave);
      this.leave(socket.id);
    };
    socket.once('disconnect', leave);
    socket.conn.once('close', leave);
    return true;
  }

  private leave(socketId: string): void {
    const sub = this.members.get(socketId);
    if (sub === undefined) return;
    this.members.delete(socketId);
    const s = this.subjects.get(sub);
    if (!s) return;
    s.connections--;
    if (s.connections === 0) this.subjects.delete(sub);
  }

  /** One request of `sub` (any of its connections); false once the user exceeds its rate. */
  take(sub: string): boolean {
    return this.subjects.get(sub)?.bucket.take() ?? true;
  }

  connectionsOf(sub: string): number {
    return this.subjects.get(sub)?.connections ?? 0;
  }
}

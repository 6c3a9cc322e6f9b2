/**
 * Who controls the running session. `session:start` issues a random token; only its holder
 * can command or stop the session, including after a reconnect (`session:resume`). Being the
 * viewer gives no control: watching and driving are separate rights. Only a hash of the token
 * is kept, compared in constant time.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

interface Grant {
  readonly sessionId: string;
  readonly ownerId: string;
  readonly tokenHash: Buffer;
}

const hash = (token: string): Buffer => createHash('sha256').update(token).digest();

export class SessionControl {
  private grant: Grant | null = null;

  /** A fresh owner id for the chart (not secret) and the token for the client (secret). */
  static newOwner(): { ownerId: string; token: string } {
    return { ownerId: `owner-${randomUUID()}`, token: randomBytes(24).toString('base64url') };
  }

  grantTo(sessionId: string, ownerId: string, token: string): void {
    this.grant = { sessionId, ownerId, tokenHash: hash(token) };
  }

  /** The grant this token proves, if any. */
  verify(token: string): { sessionId: string; ownerId: string } | null {
    const g = this.grant;
    if (!g || token.length === 0 || token.length > 256) return null;
    return timingSafeEqual(hash(token), g.tokenHash) ? { sessionId: g.sessionId, ownerId: g.ownerId } : null;
  }

  ownerOf(sessionId: string): string | null {
    return this.grant?.sessionId === sessionId ? this.grant.ownerId : null;
  }

  current(): { sessionId: string; ownerId: string } | null {
    return this.grant ? { sessionId: this.grant.sessionId, ownerId: this.grant.ownerId } : null;
  }

  revoke(sessionId: string): void {
    if (this.grant?.sessionId === sessionId) this.grant = null;
  }
}

/**
 * Handshake checks shared by every Socket.IO server framehost runs (a node, a gateway): the
 * browser-origin allow-list and the optional shared secret. Both refuse before any event is
 * read; the secret's refusal carries `{ code, message }` to the client's `connect_error`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Socket } from 'socket.io';
import { errorValue } from '../errors.ts';

/**
 * Socket.IO's `allowRequest`. Browsers send Origin; a page from another site may open a socket
 * only if allow-listed (WebSockets are not covered by CORS). Node and Python clients send none.
 */
export function originCheck(allowed: readonly string[], log: Logger) {
  return (req: IncomingMessage, callback: (err: string | null | undefined, success: boolean) => void): void => {
    const origin = req.headers.origin;
    if (!origin || allowed.includes(origin)) return callback(null, true);
    let sameHost = false;
    try {
      sameHost = new URL(origin).host === req.headers.host;
    } catch {
      sameHost = false;
    }
    if (!sameHost) log.warn({ origin }, 'handshake refused: origin not allowed');
    callback(sameHost ? null : 'origin not allowed', sameHost);
  };
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * Constant-time comparison of the handshake's `auth.token` with the configured secret. The
 * digests always have the same length (comparing the strings' bytes would throw when a token
 * has as many characters as the secret but more bytes).
 */
export function presentsSecret(socket: Socket, secret: string): boolean {
  return secretMatches((socket.handshake.auth as Record<string, unknown> | undefined)?.token, secret);
}

/** The same comparison for a token from anywhere else (an HTTP header). */
export function secretMatches(token: unknown, secret: string): boolean {
  return typeof token === 'string' && token.length <= 4096 && timingSafeEqual(digest(token), digest(secret));
}

/** The error a handshake middleware passes to `next()`: its `data` reaches the client. */
export function handshakeError(code: 'unauthorized' | 'too_many_connections', detail?: string): Error {
  return Object.assign(new Error(code), { data: errorValue(code, detail) });
}

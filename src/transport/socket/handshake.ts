/**
 * The handshake check shared by every Socket.IO server framehost runs (a node, a gateway): the
 * browser-origin allow-list (the credentials check is src/auth/access.ts, run by the middleware
 * of src/transport/socket/admission.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';

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

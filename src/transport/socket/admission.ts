/**
 * The handshake middleware of every framehost Socket.IO server (a node, a gateway): credentials
 * (src/auth/access.ts: the shared secret or an access token in `auth.token`), then the limit of
 * connections per user (token `sub`), then the server's connection limit. A refusal reaches the
 * client's `connect_error` with `.data = { code, message }`; the admitted principal is kept in
 * `socket.data.principal` for the checks of each request.
 */
import type { Logger } from 'pino';
import type { Socket } from 'socket.io';
import type { Access, Principal } from '../../auth/access.ts';
import { errorValue, type ErrorValue } from '../../errors.ts';
import type { ConnectionSlots } from './connection-slots.ts';
import type { SubjectLimits } from './subject-limits.ts';

/** The error a handshake middleware passes to `next()`: its `data` reaches the client. */
export function handshakeRefusal(error: ErrorValue): Error {
  return Object.assign(new Error(error.code), { data: error });
}

export interface AdmissionDeps {
  readonly access: Access;
  readonly slots: ConnectionSlots;
  readonly subjects: SubjectLimits;
  readonly log: Logger;
}

/** Admit a socket or say why not; taking the slots is the last, synchronous step. */
async function admit(socket: Socket, deps: AdmissionDeps): Promise<{ principal: Principal } | { error: ErrorValue }> {
  const auth = socket.handshake.auth as Record<string, unknown> | undefined;
  const checked = await deps.access.check(auth?.token);
  if (!checked.ok) return { error: checked.error };
  // The check may take a moment (a signature): a client gone meanwhile must not take a slot it never gives back.
  if (socket.conn.readyState === 'closed') return { error: errorValue('unauthorized', 'the connection closed during the handshake') };
  const { principal } = checked;
  const { subjects, slots } = deps;
  if (principal.sub !== null && subjects.connectionsOf(principal.sub) >= subjects.settings.maxConnections) {
    return { error: errorValue('too_many_connections', `limit ${subjects.settings.maxConnections} per user`) };
  }
  if (!slots.take(socket)) return { error: errorValue('too_many_connections', `limit ${slots.limit}`) };
  if (principal.sub !== null) subjects.join(principal.sub, socket); // room checked above, in the same tick
  return { principal };
}

export function admissionMiddleware(deps: AdmissionDeps) {
  return (socket: Socket, next: (err?: Error) => void): void => {
    admit(socket, deps).then(
      (r) => {
        if ('error' in r) {
          deps.log.warn({ address: socket.handshake.address, code: r.error.code, why: r.error.message }, 'handshake refused');
          return next(handshakeRefusal(r.error));
        }
        (socket.data as { principal: Principal }).principal = r.principal;
        next();
      },
      (err: unknown) => {
        deps.log.error({ err }, 'handshake check failed');
        next(handshakeRefusal(errorValue('internal')));
      },
    );
  };
}

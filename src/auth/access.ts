/**
 * Who may do what: one check for every door (the Socket.IO handshakes of a node and a gateway,
 * and the HTTP endpoints), in three modes.
 *
 * - open: no credentials configured; everyone may do everything (loopback, tests).
 * - shared secret (`--auth-token`): the LAN's simple mode; the secret's holder may do everything.
 * - tokens (`--token-key` / `--token-public-key`): signed JWTs with a role (tokens.ts). When a
 *   shared secret is set too, it is still accepted (an operator's own tools on the LAN).
 *
 * Roles grant rights: `play` (start, command, stop, resume a session, publish input, ride the
 * fleet), `watch` (attach to the stream, WebRTC, capabilities), `observe` (`/events`, `/chart`,
 * `/metrics` on the main port, recordings, journals). A request is refused `unauthorized` (no or
 * bad credentials), `token_expired`, or `forbidden` (valid credentials, wrong role).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { fail, type ErrorCode, type Result } from '../errors.ts';
import { secretMatches } from './secret.ts';
import type { TokenVerifier } from './tokens.ts';
import { roleRefusal, type Principal, type Right } from './principal.ts';

export { permits, roleRefusal, ROLE_RIGHTS, ROLES, type Principal, type Right, type Role } from './principal.ts';

const OPEN: Principal = { kind: 'open', sub: null };
const SHARED: Principal = { kind: 'shared-secret', sub: null };

export interface AccessOptions {
  readonly authToken?: string;
  readonly verifier?: TokenVerifier;
}

export class Access {
  constructor(private readonly options: AccessOptions = {}) {}

  get mode(): 'open' | 'shared-secret' | 'tokens' {
    return this.options.verifier ? 'tokens' : this.options.authToken ? 'shared-secret' : 'open';
  }

  /** Check a presented credential (a JWT or the shared secret); the same for every door. */
  async check(credential: unknown, now: number = Date.now()): Promise<Result<{ principal: Principal }>> {
    const { authToken, verifier } = this.options;
    if (!authToken && !verifier) return { ok: true, principal: OPEN };
    if (credential === undefined || credential === null || credential === '') return fail('unauthorized', 'no credentials');
    if (authToken && secretMatches(credential, authToken)) return { ok: true, principal: SHARED };
    if (!verifier) return fail('unauthorized');
    const v = await verifier.verify(credential, now);
    if (!v.ok) return v;
    const { sub, role, exp, jti } = v.claims;
    return { ok: true, principal: { kind: 'token', sub, role, expiresAt: (exp + verifier.policy.clockSkewS) * 1000, jti } };
  }

  /** Check a credential and a right together: what every request whose role matters asks. */
  async authorize(credential: unknown, right: Right, now: number = Date.now()): Promise<Result<{ principal: Principal }>> {
    const c = await this.check(credential, now);
    if (!c.ok) return c;
    return roleRefusal(c.principal, right) ?? c;
  }
}

/**
 * The credential of an HTTP request: `Authorization: Bearer …`, or `?token=…` where the caller
 * says a browser API cannot set headers (EventSource, for `/events` and `/chart/events`).
 */
export function credentialOf(req: IncomingMessage, options: { readonly query?: boolean } = {}): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === 'string' && /^bearer /i.test(header)) return header.slice(7).trim();
  if (!options.query) return undefined;
  const query = (req.url ?? '').split('?')[1];
  return query ? (new URLSearchParams(query).get('token') ?? undefined) : undefined;
}

/** HTTP status of an access refusal. */
export function accessStatus(code: ErrorCode): number {
  return code === 'forbidden' ? 403 : code === 'unauthorized' || code === 'token_expired' ? 401 : 400;
}

/**
 * The one function an HTTP handler calls to let a request in for a right (`/events`, `/chart`,
 * `/metrics`, and at merge WHEP's `POST /whep` with `play`/`watch` and `GET /recordings` with
 * `observe`). On refusal it answers the request itself (401 with `WWW-Authenticate: Bearer`, or
 * 403, and the coded error as JSON), logs it when given a logger, and returns null; else the principal.
 */
export async function authorizeRequest(
  access: Access,
  req: IncomingMessage,
  res: ServerResponse,
  right: Right,
  options: { readonly query?: boolean; readonly log?: Logger } = {},
): Promise<Principal | null> {
  const r = await access.authorize(credentialOf(req, options), right);
  if (r.ok) return r.principal;
  options.log?.warn({ path: (req.url ?? '/').split('?')[0]!.slice(0, 64), code: r.error.code, why: r.error.message }, 'http request refused');
  const status = accessStatus(r.error.code);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...(status === 401 ? { 'www-authenticate': 'Bearer' } : {}),
  });
  res.end(JSON.stringify({ error: r.error }));
  return null;
}

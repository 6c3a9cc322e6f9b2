/**
 * Access tokens: signed JWTs an operator's backend mints for its users (`createToken`, or
 * `framehost token`), and the one place a server verifies them (`TokenVerifier`).
 *
 * Claims: `sub` (the user's id in the operator's system), `role` (player | spectator |
 * operator), `exp` (required, at most `maxLifetimeS` after `iat`), `iat`, `nbf`, `jti`. The
 * header names the key (`kid`); each key verifies only with the algorithm its type allows, so
 * `alg: none` and algorithm confusion (an HS256 token keyed with a public key) are refused.
 * The signing and checking are jose's; this file only chooses keys and maps failures to codes.
 */
import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTHeaderParameters } from 'jose';
import { fail, FramehostError, type Result } from '../errors.ts';
import { ROLES, type Role } from './principal.ts';
import { loadSigningKey, type SigningKey, type TokenKey, type TokenKeySet } from './keys.ts';

export { ROLES, type Role } from './principal.ts';

export interface TokenClaims {
  readonly sub: string;
  readonly role: Role;
  /** Seconds since the epoch, as in the JWT. */
  readonly exp: number;
  readonly iat: number;
  readonly jti: string;
}

export interface TokenPolicy {
  /** Longest `exp - iat` a server accepts (seconds); a longer-lived token is refused. */
  readonly maxLifetimeS: number;
  /** Clock difference allowed between the minting and the checking machine (seconds), for `exp` and `nbf`. */
  readonly clockSkewS: number;
}

export const DEFAULT_TOKEN_POLICY: TokenPolicy = {
  maxLifetimeS: 86_400, // a day: a token is re-minted per visit; an expiring one does not end a running session
  clockSkewS: 30, // NTP keeps servers within milliseconds; 30 s covers a laptop's or a VM's drift
};

/** Far above a real token (~400 characters); bounds the work a forged one can cause. */
export const MAX_TOKEN_LENGTH = 4096;
const MAX_SUB_LENGTH = 256;

/** `600`, `600s`, `10m`, `2h`, `1d` → seconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new FramehostError('bad_request', `a duration is a number of seconds or like 90s, 10m, 2h, 1d; got ${JSON.stringify(value)}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}

export interface CreateTokenOptions {
  /** The signing key: `--token-key`'s value (an HS256 secret or a PEM private key's path), or a loaded key. */
  readonly key: string | SigningKey;
  readonly role: Role;
  /** The user's id in your system; default a random `anon-…` id. */
  readonly sub?: string;
  /** Lifetime: seconds or `10m`-style; default 10 minutes, at most `maxLifetimeS`. */
  readonly ttl?: string | number;
  readonly maxLifetimeS?: number;
  /** "Now", ms since the epoch (tests). */
  readonly now?: number;
}

/** Mint a token (the operator's backend calls this for each logged-in user). */
export async function createToken(options: CreateTokenOptions): Promise<string> {
  const key = typeof options.key === 'string' ? await loadSigningKey(options.key) : options.key;
  if (!(ROLES as readonly string[]).includes(options.role)) throw new FramehostError('bad_request', `role must be one of ${ROLES.join(', ')}`);
  const ttl = parseDuration(options.ttl ?? 600);
  const max = options.maxLifetimeS ?? DEFAULT_TOKEN_POLICY.maxLifetimeS;
  if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > max) throw new FramehostError('bad_request', `ttl must be 1 to ${max} seconds`);
  const sub = options.sub ?? `anon-${randomUUID()}`;
  if (sub.length === 0 || sub.length > MAX_SUB_LENGTH) throw new FramehostError('bad_request', `sub must have 1 to ${MAX_SUB_LENGTH} characters`);
  const iat = Math.floor((options.now ?? Date.now()) / 1000);
  return new SignJWT({ role: options.role })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + ttl)
    .setJti(randomUUID())
    .sign(key.signKey);
}

/** Thrown inside jose's key lookup; its message becomes the refusal's detail. */
class KeyRefusal extends Error {}

/** A jose failure as a coded refusal; details name the check, never the key material. */
function refusalOf(err: unknown): { ok: false; error: ReturnType<typeof fail>['error'] } {
  if (err instanceof KeyRefusal) return fail('unauthorized', err.message);
  if (err instanceof errors.JWTExpired) return fail('token_expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    return fail('unauthorized', err.claim === 'nbf' ? 'the token is not valid yet' : `claim ${err.claim}: ${err.reason}`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return fail('unauthorized', 'bad signature');
  if (err instanceof errors.JOSEAlgNotAllowed) return fail('unauthorized', 'algorithm not allowed');
  return fail('unauthorized', 'malformed token');
}

/** The one place a token is checked: by the Socket.IO handshakes, the HTTP endpoints and the gateway. */
export class TokenVerifier {
  private readonly byKid: ReadonlyMap<string, TokenKey>;
  private readonly algorithms: readonly string[];

  constructor(
    keys: TokenKeySet,
    readonly policy: TokenPolicy = DEFAULT_TOKEN_POLICY,
  ) {
    this.byKid = new Map(keys.keys.map((k) => [k.kid, k]));
    this.algorithms = [...new Set(keys.keys.map((k) => k.alg))];
  }

  /** The key a header names, used only with its own algorithm. */
  private keyFor(header: JWTHeaderParameters): TokenKey['verifyKey'] {
    const only = this.byKid.size === 1 ? [...this.byKid.values()][0] : undefined;
    const key = header.kid === undefined ? only : this.byKid.get(header.kid);
    if (!key) throw new KeyRefusal(header.kid === undefined ? 'the token names no key id (kid)' : 'unknown key id');
    if (header.alg !== key.alg) throw new KeyRefusal('algorithm not allowed for this key');
    return key.verifyKey;
  }

  async verify(token: unknown, now: number = Date.now()): Promise<Result<{ claims: TokenClaims }>> {
    if (typeof token !== 'string' || token.length === 0) return fail('unauthorized', 'no token');
    if (token.length > MAX_TOKEN_LENGTH) return fail('unauthorized', `token longer than ${MAX_TOKEN_LENGTH} characters`);
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, (header) => this.keyFor(header), {
        algorithms: [...this.algorithms],
        clockTolerance: this.policy.clockSkewS,
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
        currentDate: new Date(now),
      }));
    } catch (err) {
      return refusalOf(err);
    }
    const { sub, role, exp, iat, jti } = payload;
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUB_LENGTH) return fail('unauthorized', 'bad sub');
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) return fail('unauthorized', `role must be one of ${ROLES.join(', ')}`);
    if (typeof jti !== 'string' || typeof exp !== 'number' || typeof iat !== 'number') return fail('unauthorized', 'bad claims');
    if (exp - iat > this.policy.maxLifetimeS) return fail('unauthorized', `lifetime over the server's maximum of ${this.policy.maxLifetimeS} s`);
    return { ok: true, claims: { sub, role: role as Role, exp, iat, jti } };
  }
}

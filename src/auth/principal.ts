/**
 * Roles, rights and principals: the pure part of access (no Node APIs, so the typed event map
 * that the browser page compiles can name a connection's principal).
 */
import { fail, type ErrorValue } from '../errors.ts';

export const ROLES = ['player', 'spectator', 'operator'] as const;
export type Role = (typeof ROLES)[number];

export type Right = 'play' | 'watch' | 'observe';

export const ROLE_RIGHTS: Readonly<Record<Role, readonly Right[]>> = {
  player: ['play', 'watch'],
  spectator: ['watch'],
  operator: ['watch', 'observe'],
};

/**
 * Who presented what. `sub` is null where there is no user to tell apart (open and shared-secret
 * modes). `expiresAt`: when the server stops accepting the token (its `exp` plus the clock-skew
 * allowance), ms since the epoch.
 */
export type Principal =
  | { readonly kind: 'open'; readonly sub: null }
  | { readonly kind: 'shared-secret'; readonly sub: null }
  | { readonly kind: 'token'; readonly sub: string; readonly role: Role; readonly expiresAt: number; readonly jti: string };

/** The role rule, pure: open and shared-secret principals may do everything. */
export function permits(principal: Principal, right: Right): boolean {
  return principal.kind !== 'token' || ROLE_RIGHTS[principal.role].includes(right);
}

/** The refusal for a principal lacking a right, or null when it has it. */
export function roleRefusal(principal: Principal, right: Right): { ok: false; error: ErrorValue } | null {
  if (permits(principal, right)) return null;
  const role = principal.kind === 'token' ? principal.role : '';
  return fail('forbidden', `a ${role} token does not grant ${right}`);
}


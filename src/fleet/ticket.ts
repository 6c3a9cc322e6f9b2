/**
 * Tickets: what the gateway hands a client so that one node admits exactly that client.
 *
 * A ticket is `ft1.<claims>.<mac>`: the claims `{ jobId, node, attempt, exp }` as base64url
 * JSON, and an HMAC-SHA256 over them with the fleet's shared secret. The node that minted it
 * checks it with no Redis round trip: the MAC proves a node of this fleet minted it, `node` and
 * `attempt` bind it to this node and this try of the job (a ticket from before a requeue is
 * refused), `exp` bounds how long it may wait unused. One-time use is the node's to enforce
 * (it arms exactly one ticket at a time; see node.ts).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { fail, type Result } from '../errors.ts';

export interface TicketClaims {
  readonly jobId: string;
  readonly node: string;
  /** The job's `attemptsStarted` when this node took it: a requeued job gets a new attempt. */
  readonly attempt: number;
  /** Expiry, ms since the epoch, by the minting node's clock (the only clock that checks it). */
  readonly exp: number;
}

const VERSION = 'ft1';
/** Far above a real ticket (~250 characters); bounds the work a forged one can cause. */
const MAX_TICKET_LENGTH = 1024;

const mac = (secret: string, payload: string): Buffer => createHmac('sha256', secret).update(`${VERSION}.${payload}`).digest();

export function mintTicket(claims: TicketClaims, secret: string): string {
  const payload = Buffer.from(JSON.stringify({ jobId: claims.jobId, node: claims.node, attempt: claims.attempt, exp: claims.exp })).toString('base64url');
  return `${VERSION}.${payload}.${mac(secret, payload).toString('base64url')}`;
}

function isClaims(value: unknown): value is TicketClaims {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.jobId === 'string' &&
    typeof v.node === 'string' &&
    typeof v.attempt === 'number' &&
    Number.isSafeInteger(v.attempt) &&
    typeof v.exp === 'number' &&
    Number.isFinite(v.exp)
  );
}

/**
 * Check a ticket's form, MAC and expiry. `ticket_invalid` for anything malformed or forged
 * (the message never says which part failed, so it teaches a forger nothing), `ticket_expired`
 * for a genuine ticket past `exp`.
 */
export function verifyTicket(ticket: unknown, secret: string, now: number = Date.now()): Result<{ claims: TicketClaims }> {
  if (typeof ticket !== 'string' || ticket.length === 0 || ticket.length > MAX_TICKET_LENGTH) return fail('ticket_invalid');
  const parts = ticket.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION) return fail('ticket_invalid');
  const [, payload, signature] = parts as [string, string, string];
  const expected = mac(secret, payload);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return fail('ticket_invalid');
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return fail('ticket_invalid');
  }
  if (!isClaims(claims)) return fail('ticket_invalid');
  if (now >= claims.exp) return fail('ticket_expired', `expired ${now - claims.exp} ms ago`);
  return { ok: true, claims };
}

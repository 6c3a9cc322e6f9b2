/**
 * The shared secret's comparison (LAN mode's `--auth-token`), kept with the other credential
 * checks of src/auth/ so that they need nothing from the transports that call them.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * Constant-time comparison of a presented credential with the shared secret. The digests always
 * have the same length (comparing the strings' bytes would throw when a token has as many
 * characters as the secret but more bytes).
 */
export function secretMatches(token: unknown, secret: string): boolean {
  return typeof token === 'string' && token.length <= 4096 && timingSafeEqual(digest(token), digest(secret));
}

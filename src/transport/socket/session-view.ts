/** The running session as every client may see it (`SessionView`): from the runtime's status, null when none runs. */
import type { RuntimeStatus } from '../../runtime/runtime.ts';
import type { SessionView } from './events.ts';

export function sessionView(status: RuntimeStatus, now = Date.now()): SessionView | null {
  const s = status.session;
  if (!s) return null;
  // Relative to now: the client's clock need not agree with the server's.
  const orphanMsLeft = s.orphanStopsAt === null ? null : Math.max(0, s.orphanStopsAt - now);
  return { id: s.id, ownerAway: s.ownerAway, orphanMsLeft, controls: s.controls };
}

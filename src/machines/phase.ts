/**
 * The chart's state as one word, for people and clients: `running` rather than
 * `{ alive: { lifecycle: { session: 'running' }, watchdog: 'watching' } }`. Pure; the list is closed.
 */
import type { SnapshotFrom } from 'xstate';
import type { RuntimeMachine } from './runtime.machine.ts';

export const PHASES = ['loading', 'idle', 'starting', 'running', 'stopping', 'cleanup', 'closing', 'recovering', 'failed', 'shutdown'] as const;
export type Phase = (typeof PHASES)[number];

export function phaseOf(snapshot: SnapshotFrom<RuntimeMachine>): Phase {
  // A shutdown while loading: the load's own state (its timeout still runs), but no longer a load
  // that will serve anyone.
  if (snapshot.matches({ alive: { lifecycle: { loading: 'closingEarly' } } })) return 'closing';
  for (const phase of PHASES) {
    if (phase === 'starting' || phase === 'running' || phase === 'stopping') {
      if (snapshot.matches({ alive: { lifecycle: { session: phase } } })) return phase;
    } else if (phase === 'loading' || phase === 'idle' || phase === 'cleanup' || phase === 'closing') {
      if (snapshot.matches({ alive: { lifecycle: phase } })) return phase;
    } else if (snapshot.matches(phase)) {
      return phase;
    }
  }
  return 'loading';
}

/** Phases in which the runtime can serve a new session now or soon (for /ready). */
export function isServing(phase: Phase): boolean {
  return phase !== 'loading' && phase !== 'recovering' && phase !== 'failed' && phase !== 'closing' && phase !== 'shutdown';
}

/**
 * The lifecycle statechart of one ride as a gateway replica sees it (one actor per ride this
 * replica speaks for; src/fleet/gateway.ts is its edge).
 *
 *   ride:    waiting (in line; positions pushed) → assigned (ticket sent; noShow marks it
 *            overdue) → riding (the node began the session) → requeued (its node was lost; in
 *            line again, at the head) → assigned … → ended (final, with the reason)
 *   client:  present ⇄ away (the connection dropped; reconnectGrace) → removing (a waiting ride
 *            leaves the queue) | forgotten (the ride lives on at its node; this replica stops
 *            speaking for it)
 *
 * The chart decides; the edge checks what needs Redis (is the assignment the job's current
 * try?) before sending the event, and carries out what the chart emits (tell the client, watch
 * its position, count, record). Removing an abandoned ride is an actor the edge provides.
 */
import { and, assign, emit, fromPromise, not, setup, stateIn } from 'xstate';
import type { ErrorValue } from '../errors.ts';

/** Why a ride ended: a session end reason, `no_show`, `cancelled`, `failed` (as RideEndReason). */
export type RideEndReason = string;

export interface RideAssignment {
  readonly jobId: string;
  readonly url: string;
  readonly ticket: string;
  readonly node: string;
  readonly attempt: number;
}

export interface RideTimes {
  /** A client gone this long loses a waiting ride (it leaves the queue). */
  readonly reconnectGraceMs: number;
  /** An assignment whose session has not begun by then is shown overdue (the node's own no-show ends it). */
  readonly noShowMs: number;
}

export interface RideContext {
  readonly jobId: string;
  readonly times: RideTimes;
  /** Wall clock, ms since the epoch (the request time is one too). */
  readonly now: () => number;
  readonly requestedAt: number;
  attempt: number;
  assignment: RideAssignment | null;
  sessionId: string | null;
  assignments: number;
  requeues: number;
  /** When the ride went back into line (for the second wait's metric). */
  requeuedAt: number | null;
  end: { reason: RideEndReason; error?: ErrorValue } | null;
}

export type RideEvent =
  | { type: 'ride.assigned'; assignment: RideAssignment }
  | { type: 'ride.riding'; attempt: number; sessionId: string }
  | { type: 'ride.requeued' }
  | { type: 'ride.ended'; reason: RideEndReason; error?: ErrorValue }
  | { type: 'client.left' }
  | { type: 'client.back' };

export type RideEmitted =
  | { type: 'tell.assigned'; assignment: RideAssignment; reassignment: boolean }
  | { type: 'tell.requeued' }
  | { type: 'tell.ended'; reason: RideEndReason; error?: ErrorValue }
  | { type: 'positions.watch' }
  | { type: 'positions.unwatch' }
  /** Time in line before this assignment: the first wait, or the wait after a requeue. */
  | { type: 'waited'; seconds: number; reassignment: boolean }
  | { type: 'abandoned'; removed: boolean };

export interface RideMachineInput {
  readonly jobId: string;
  readonly requestedAt: number;
  readonly times: RideTimes;
  readonly now: () => number;
  /** A ride taken over from another replica (resume) may already be held by a node. */
  readonly held?: { readonly attempt: number };
}

const rideSetup = setup({
  types: {
    context: {} as RideContext,
    events: {} as RideEvent,
    emitted: {} as RideEmitted,
    input: {} as RideMachineInput,
  },
  actors: {
    // Provided by the gateway: remove the job if it still waits and this replica's claim holds.
    abandon: fromPromise<{ removed: boolean }, { jobId: string }>(async () => ({ removed: false })),
  },
  guards: {
    /** An assignment for a newer try of the job (a node that froze may announce a stale one). */
    newerAttempt: ({ context, event }) => event.type === 'ride.assigned' && event.assignment.attempt > context.attempt,
    currentAttempt: ({ context, event }) => event.type === 'ride.riding' && event.attempt === context.attempt,
    inLine: stateIn({ ride: 'waiting' }),
    /** Taken over from another replica while a node held it. */
    heldByNode: ({ context }) => context.attempt > 0,
    ended: stateIn({ ride: 'ended' }),
    removing: stateIn({ client: 'removing' }),
    inLineAgain: stateIn({ ride: 'requeued' }),
    removed: (_, output: { removed: boolean }) => output.removed,
  },
  actions: {
    storeAssignment: assign(({ context, event }) =>
      event.type === 'ride.assigned' ? { assignment: event.assignment, attempt: event.assignment.attempt, sessionId: null, assignments: context.assignments + 1 } : {},
    ),
    tellAssigned: emit(({ context }) => ({ type: 'tell.assigned' as const, assignment: context.assignment!, reassignment: context.requeuedAt !== null })),
    measureWait: emit(({ context }) => {
      const from = context.requeuedAt ?? context.requestedAt;
      return { type: 'waited' as const, seconds: Math.max(0, context.now() - from) / 1000, reassignment: context.requeuedAt !== null };
    }),
    clearRequeue: assign({ requeuedAt: null }),
    storeRiding: assign({ sessionId: ({ event }) => (event.type === 'ride.riding' ? event.sessionId : null) }),
    storeRequeue: assign({ requeues: ({ context }) => context.requeues + 1, requeuedAt: ({ context }) => context.now(), assignment: null, sessionId: null }),
    tellRequeued: emit({ type: 'tell.requeued' }),
    storeEnd: assign({
      end: ({ event }) => (event.type === 'ride.ended' ? { reason: event.reason, ...(event.error ? { error: event.error } : {}) } : { reason: 'cancelled' }),
    }),
    tellEnded: emit(({ context }) => ({ type: 'tell.ended' as const, reason: context.end?.reason ?? 'cancelled', ...(context.end?.error ? { error: context.end.error } : {}) })),
    watch: emit({ type: 'positions.watch' }),
    unwatch: emit({ type: 'positions.unwatch' }),
    abandoned: emit((_, params: { removed: boolean }) => ({ type: 'abandoned' as const, removed: params.removed })),
  },
  delays: {
    reconnectGrace: ({ context }) => context.times.reconnectGraceMs,
    noShow: ({ context }) => context.times.noShowMs,
  },
});

const ASSIGNED = { target: '#ride.ride.assigned', actions: ['measureWait', 'storeAssignment', 'tellAssigned', 'clearRequeue'] } as const;

export const rideMachine = rideSetup.createMachine({
  id: 'ride',
  type: 'parallel',
  context: ({ input }) => ({
    jobId: input.jobId,
    times: input.times,
    now: input.now,
    requestedAt: input.requestedAt,
    attempt: input.held?.attempt ?? 0,
    assignment: null,
    sessionId: null,
    assignments: 0,
    requeues: 0,
    requeuedAt: null,
    end: null,
  }),
  states: {
    ride: {
      initial: 'start',
      on: {
        // While an abandoned ride is being removed, its removal reports (`abandoned`), not an end.
        'ride.ended': { guard: and([not('ended'), not('removing')]), target: '.ended', actions: 'storeEnd' },
      },
      states: {
        // Where a ride starts: in line, or (taken over from another replica) already at a node.
        start: { always: [{ guard: 'heldByNode', target: 'riding' }, { target: 'waiting' }] },
        waiting: {
          entry: 'watch',
          exit: 'unwatch',
          on: { 'ride.assigned': ASSIGNED },
        },
        assigned: {
          initial: 'onTime',
          states: {
            onTime: { after: { noShow: 'overdue' } },
            // Shown to the operator; the node's own no-show timeout ends the ride.
            overdue: {},
          },
          on: {
            'ride.riding': { guard: 'currentAttempt', target: 'riding', actions: 'storeRiding' },
            'ride.requeued': { target: 'requeued', actions: ['storeRequeue', 'tellRequeued'] },
            'ride.assigned': { guard: 'newerAttempt', ...ASSIGNED, reenter: true },
          },
        },
        riding: {
          on: {
            'ride.requeued': { target: 'requeued', actions: ['storeRequeue', 'tellRequeued'] },
            'ride.assigned': { guard: 'newerAttempt', ...ASSIGNED },
          },
        },
        requeued: {
          entry: 'watch',
          exit: 'unwatch',
          on: { 'ride.assigned': { guard: 'newerAttempt', ...ASSIGNED } },
        },
        ended: { type: 'final', entry: 'tellEnded' },
      },
    },
    client: {
      initial: 'present',
      states: {
        present: { on: { 'client.left': 'away' } },
        away: {
          on: { 'client.back': 'present' },
          after: {
            reconnectGrace: [
              { guard: 'inLine', target: 'removing' },
              { guard: 'inLineAgain', target: 'removing' },
              // Assigned or riding: the ride lives at its node; its end completes the job.
              { target: 'forgotten', actions: { type: 'abandoned', params: { removed: false } } },
            ],
          },
        },
        removing: {
          invoke: {
            id: 'abandon',
            src: 'abandon',
            input: ({ context }) => ({ jobId: context.jobId }),
            onDone: [
              { guard: { type: 'removed', params: ({ event }) => event.output }, target: 'forgotten', actions: [{ type: 'abandoned', params: { removed: true } }] },
              // Not removed: another replica's connection took it over, or a node has just taken it.
              { target: 'forgotten', actions: { type: 'abandoned', params: { removed: false } } },
            ],
            onError: { target: 'forgotten', actions: { type: 'abandoned', params: { removed: false } } },
          },
          on: { 'client.back': 'present' },
        },
        forgotten: { type: 'final' },
      },
    },
  },
});

export type RideMachine = typeof rideMachine;

/** What the fleet page and /health show for a ride. */
export type RidePhase = 'waiting' | 'assigned' | 'overdue' | 'riding' | 'requeued' | 'ended';

export function ridePhaseOf(snapshot: { matches(value: object): boolean }): RidePhase {
  if (snapshot.matches({ ride: 'ended' })) return 'ended';
  if (snapshot.matches({ ride: { assigned: 'overdue' } })) return 'overdue';
  if (snapshot.matches({ ride: 'assigned' })) return 'assigned';
  if (snapshot.matches({ ride: 'riding' })) return 'riding';
  if (snapshot.matches({ ride: 'requeued' })) return 'requeued';
  return 'waiting';
}

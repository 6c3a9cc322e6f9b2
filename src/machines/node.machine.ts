/**
 * The lifecycle statechart of a fleet node (src/fleet/node.ts runs it beside the runtime's).
 *
 *   ride:   registering → free (resting ⇄ taking) → reserved (ticket armed, noShow) → serving
 *           → completing → free …; gone (final) once drained or closed
 *   lease:  none → active (while a job is held), two regions:
 *             renewal:  resting → renewing (every renewEvery) …
 *             standing: held → late (a renewal is overdue) → fenced (the proof is too old, or a
 *                       renewal was refused)
 *   drain:  open → draining (takes nothing new) → overdue (drainDeadline: the ride is cut)
 *
 * Draining is a region, not a step of `ride`: a draining node still serves the ride it holds.
 *
 * The lease rule ("may this node act on its user?") is `mayAct` below, the same pure function
 * (src/machines/lease.ts) that the chart's guards use and that the frame path asks
 * synchronously for every frame, model message, command and input frame. The chart imports no
 * Redis and no BullMQ: taking, publishing, renewing and completing are actors that node.ts
 * provides (`machine.provide`), and everything the node must do outside (log a line, stop the
 * session) is emitted. The clock is an input (performance.now() in the node, a fake in tests).
 */
import { assign, emit, fromCallback, fromPromise, not, raise, setup, type SnapshotFrom } from 'xstate';
import type { ErrorValue } from '../errors.ts';
import { leaseHeld, proofLifetimeMs, renewedProof, type LeaseProof, type LeaseTimes } from './lease.ts';
import type { EndReason } from './types.ts';

/** How a ride ended on this node (the job's return value's reason). */
export type NodeRideEnd = EndReason | 'no_show';

export interface NodeTimes extends LeaseTimes {
  /** How often the held lock is renewed. */
  readonly renewEveryMs: number;
  /** An assigned user who has not started by then releases the node. */
  readonly noShowMs: number;
  /** At a drain, the held ride may go on this long; then it is cut (`shutdown`). */
  readonly drainDeadlineMs: number;
  /** A free node also looks for a job this often (an event usually wakes it sooner). */
  readonly pollMs: number;
}

/** The job this node holds: ids only; the BullMQ job object stays at the edge. */
export interface NodeHold {
  readonly jobId: string;
  readonly attempt: number;
  /** The ticket armed for this ride's user (minted at the edge). */
  readonly ticket: string;
  /** This node's take request number (drains are judged by it, not by clocks). */
  readonly take: number;
}

export interface NodeRideResult {
  readonly reason: NodeRideEnd;
  readonly sessionId?: string;
  readonly frames?: number;
  readonly error?: ErrorValue;
}

/** What a take request found. */
export type TakeOutput =
  | { readonly kind: 'none' }
  /** A job past its stall limit was failed instead (BullMQ does that at take time): take again. */
  | { readonly kind: 'retry' }
  | { readonly kind: 'job'; readonly hold: NodeHold; readonly issuedAt: number };

export interface RenewOutput {
  readonly confirmed: boolean;
  /** Monotonic ms when the renewal was sent: a confirmation proves the lock from then on. */
  readonly issuedAt: number;
}

export type CompleteOutput = { readonly completed: true } | { readonly completed: false; readonly why: string };

export interface NodeContext {
  readonly nodeId: string;
  readonly times: NodeTimes;
  /** Monotonic clock, ms. */
  readonly now: () => number;
  hold: NodeHold | null;
  proof: LeaseProof;
  sessionId: string | null;
  frames: number;
  result: NodeRideResult | null;
  runtimeIdle: boolean;
  draining: boolean;
  takes: number;
  sessions: number;
  fences: number;
  refusedCompletions: number;
  /** Why the last fence happened (for the log and the operator). */
  fenceWhy: string | null;
}

export type NodeEvent =
  | { type: 'node.wake' }
  | { type: 'node.drain' }
  | { type: 'node.close' }
  | { type: 'runtime.phase'; idle: boolean }
  | { type: 'session.began'; sessionId: string }
  | { type: 'session.finished'; sessionId: string; reason: EndReason; frames: number; error?: ErrorValue }
  /** The frame path found the proof too old: fence now rather than at the next delay. */
  | { type: 'lease.check'; why: string }
  // internal (raised by the chart itself)
  | { type: 'lease.begin' }
  | { type: 'lease.renewed' }
  | { type: 'lease.refused' }
  | { type: 'lease.fenced' }
  | { type: 'hold.released' }
  | { type: 'drain.deadline' };

/** Log lines the node writes (its `fleet` field); tests and operators key on them. */
export type NodeLine =
  | 'ready'
  | 'job.taken'
  | 'job.assigned'
  | 'session.began'
  | 'job.completed'
  | 'completion.rejected'
  | 'fenced'
  | 'no_show'
  | 'drain.began'
  | 'drain.deadline'
  | 'drained';

export type NodeEmitted =
  | { type: 'line'; line: NodeLine; level: 'info' | 'warn'; fields: Record<string, unknown> }
  /** Stop the running session with this reason (the runtime's `session.finished` follows). */
  | { type: 'session.stop'; reason: EndReason }
  /** The ticket holder began the session: tell the gateway (the job's progress), for the operator. */
  | { type: 'ride.riding'; hold: NodeHold; sessionId: string };

export interface NodeMachineInput {
  readonly nodeId: string;
  readonly times: NodeTimes;
  readonly now: () => number;
}

/** May the node act on its user now: send a frame, take a command, admit the ticket holder? */
export function mayAct(context: Pick<NodeContext, 'hold' | 'proof' | 'times'>, now: number): boolean {
  return context.hold !== null && leaseHeld(context.proof, now, context.times);
}

const lifetime = (c: NodeContext): number => proofLifetimeMs(c.times);
const since = (c: NodeContext): number => Math.round(c.now() - c.proof.proofAt);

const nodeSetup = setup({
  types: {
    context: {} as NodeContext,
    events: {} as NodeEvent,
    emitted: {} as NodeEmitted,
    input: {} as NodeMachineInput,
  },
  actors: {
    // Placeholders: node.ts provides the BullMQ/Redis implementations; tests provide fakes.
    connect: fromPromise<void>(async () => {
      throw new Error('connect is provided by the node');
    }),
    take: fromPromise<TakeOutput, { take: number }>(async () => ({ kind: 'none' })),
    publish: fromPromise<void, NodeHold>(async () => undefined),
    renew: fromPromise<RenewOutput, NodeHold>(async () => ({ confirmed: false, issuedAt: 0 })),
    complete: fromPromise<CompleteOutput, { hold: NodeHold; result: NodeRideResult; fenced: boolean }>(async () => ({ completed: false, why: 'not provided' })),
    heartbeat: fromCallback(() => undefined),
  },
  guards: {
    /** Take a job: the runtime is idle (its last session cleaned up) and no drain began. */
    mayTake: ({ context }) => context.runtimeIdle && !context.draining,
    draining: ({ context }) => context.draining,
    gotJob: (_, output: TakeOutput) => output.kind === 'job',
    retryTake: (_, output: TakeOutput) => output.kind === 'retry',
    renewalConfirmed: (_, output: RenewOutput) => output.confirmed,
    /** The lease rule, as the frame path asks it. */
    proofValid: ({ context }) => mayAct(context, context.now()),
    heldSession: ({ context, event }) => event.type === 'session.finished' && event.sessionId === context.sessionId,
    completed: (_, output: CompleteOutput) => output.completed,
  },
  actions: {
    countTake: assign({ takes: ({ context }) => context.takes + 1 }),
    storeHold: assign((_, output: TakeOutput) =>
      output.kind === 'job'
        ? { hold: output.hold, proof: { proofAt: output.issuedAt, fenced: false }, sessionId: null, frames: 0, result: null, fenceWhy: null }
        : {},
    ),
    storeProof: assign({ proof: ({ context }, output: RenewOutput) => renewedProof(context.proof, output.issuedAt) }),
    markFenced: assign({
      proof: ({ context }) => ({ ...context.proof, fenced: true }),
      fences: ({ context }) => context.fences + 1,
      fenceWhy: ({ context, event }) =>
        event.type === 'lease.check' ? event.why : event.type === 'lease.refused' ? 'renewal refused: the lock is gone or someone else holds it' : (context.fenceWhy ?? 'lease not renewed in time'),
    }),
    storeSession: assign({
      sessionId: ({ event }) => (event.type === 'session.began' ? event.sessionId : null),
      sessions: ({ context }) => context.sessions + 1,
    }),
    storeEnd: assign({
      result: ({ context, event }, params: { reason?: NodeRideEnd } | undefined): NodeRideResult => {
        const reason: NodeRideEnd = context.proof.fenced ? 'fenced' : (params?.reason ?? (event.type === 'session.finished' ? event.reason : 'stopped'));
        const session = context.sessionId ? { sessionId: context.sessionId, frames: event.type === 'session.finished' ? event.frames : context.frames } : {};
        return { reason, ...session, ...(event.type === 'session.finished' && event.error ? { error: event.error } : {}) };
      },
    }),
    countRefusal: assign({ refusedCompletions: ({ context }) => context.refusedCompletions + 1 }),
    releaseHold: assign({ hold: null, sessionId: null, result: null, proof: { proofAt: 0, fenced: false } }),
    startDrain: assign({ draining: true }),
    storeRuntimePhase: assign({ runtimeIdle: ({ event, context }) => (event.type === 'runtime.phase' ? event.idle : context.runtimeIdle) }),
    beginLease: raise({ type: 'lease.begin' }),
    announceRenewed: raise({ type: 'lease.renewed' }),
    announceRefused: raise({ type: 'lease.refused' }),
    announceFenced: raise({ type: 'lease.fenced' }),
    announceReleased: raise({ type: 'hold.released' }),
    announceDrainDeadline: raise({ type: 'drain.deadline' }),
    announceRiding: emit(({ context }) => ({ type: 'ride.riding' as const, hold: context.hold!, sessionId: context.sessionId! })),
    stopSession: emit((_, params: { reason: EndReason }) => ({ type: 'session.stop' as const, reason: params.reason })),
    // The node's log lines, with the fields the chaos test's checker reads.
    lineTaken: emit(({ context }) => ({
      type: 'line' as const,
      line: 'job.taken' as const,
      level: 'info' as const,
      fields: { jobId: context.hold?.jobId, attempt: context.hold?.attempt, take: context.hold?.take },
    })),
    lineSessionBegan: emit(({ context }) => ({
      type: 'line' as const,
      line: 'session.began' as const,
      level: 'info' as const,
      fields: { jobId: context.hold?.jobId, attempt: context.hold?.attempt, sessionId: context.sessionId },
    })),
    lineFenced: emit(({ context }) => ({
      type: 'line' as const,
      line: 'fenced' as const,
      level: 'warn' as const,
      fields: { jobId: context.hold?.jobId, attempt: context.hold?.attempt, why: context.fenceWhy, sinceProofMs: since(context), sessionId: context.sessionId },
    })),
    lineNoShow: emit(({ context }) => ({ type: 'line' as const, line: 'no_show' as const, level: 'info' as const, fields: { jobId: context.hold?.jobId, attempt: context.hold?.attempt } })),
    lineCompleted: emit(({ context }, params: { completed: boolean; why?: string }) => ({
      type: 'line' as const,
      line: params.completed ? ('job.completed' as const) : ('completion.rejected' as const),
      level: params.completed ? ('info' as const) : ('warn' as const),
      fields: { jobId: context.hold?.jobId, attempt: context.hold?.attempt, reason: context.result?.reason, fenced: context.proof.fenced, ...(params.why ? { err: params.why } : {}) },
    })),
    lineDrainBegan: emit(({ context }) => ({
      type: 'line' as const,
      line: 'drain.began' as const,
      level: 'info' as const,
      fields: { takesIssued: context.takes, holding: context.hold?.jobId ?? null, sessionId: context.sessionId },
    })),
    lineDrainDeadline: emit(({ context }) => ({ type: 'line' as const, line: 'drain.deadline' as const, level: 'info' as const, fields: { jobId: context.hold?.jobId ?? null, sessionId: context.sessionId } })),
    lineDrained: emit(({ context }) => ({ type: 'line' as const, line: 'drained' as const, level: 'info' as const, fields: { sessions: context.sessions } })),
  },
  delays: {
    pollEvery: ({ context }) => context.times.pollMs,
    noShow: ({ context }) => context.times.noShowMs,
    renewEvery: ({ context }) => context.times.renewEveryMs,
    /** The lease is late once two renewals in a row are unconfirmed (one slow round trip is normal). */
    renewalLate: ({ context }) => Math.max(0, context.proof.proofAt + 2 * context.times.renewEveryMs - context.now()),
    /** The fence margin: the proof is good for leaseMs − fenceMarginMs after the renewal was sent. */
    fenceMargin: ({ context }) => Math.max(0, context.proof.proofAt + lifetime(context) - context.now()),
    drainDeadline: ({ context }) => context.times.drainDeadlineMs,
  },
});

export const nodeMachine = nodeSetup.createMachine({
  id: 'node',
  type: 'parallel',
  context: ({ input }) => ({
    nodeId: input.nodeId,
    times: input.times,
    now: input.now,
    hold: null,
    proof: { proofAt: 0, fenced: false },
    sessionId: null,
    frames: 0,
    result: null,
    runtimeIdle: true,
    draining: false,
    takes: 0,
    sessions: 0,
    fences: 0,
    refusedCompletions: 0,
    fenceWhy: null,
  }),
  on: {
    'runtime.phase': { actions: 'storeRuntimePhase' },
  },
  states: {
    ride: {
      initial: 'registering',
      on: { 'node.close': '.gone' },
      states: {
        registering: {
          // Drained before it ever joined (the model still loading, Redis not yet answering): it
          // holds no ride, so it is done at once rather than after a load that may never end.
          always: { guard: 'draining', target: 'gone', actions: 'lineDrained' },
          invoke: {
            id: 'connect',
            src: 'connect',
            onDone: {
              target: 'free',
              actions: emit(({ context }) => ({ type: 'line' as const, line: 'ready' as const, level: 'info' as const, fields: { leaseMs: context.times.leaseMs } })),
            },
            onError: 'gone',
          },
        },
        free: {
          invoke: { src: 'heartbeat' },
          initial: 'resting',
          states: {
            // Back from a ride: take as soon as the runtime has cleaned up (its phase event re-checks this).
            resting: {
              always: [
                { guard: 'draining', target: '#node.ride.gone', actions: 'lineDrained' },
                { guard: 'mayTake', target: 'taking' },
              ],
            },
            taking: {
              entry: 'countTake',
              // A take issued before a drain began is served: its answer decides, not the drain.
              invoke: {
                id: 'take',
                src: 'take',
                input: ({ context }) => ({ take: context.takes }),
                onDone: [
                  {
                    guard: { type: 'gotJob', params: ({ event }) => event.output },
                    target: '#node.ride.reserved',
                    actions: [{ type: 'storeHold', params: ({ event }) => event.output }, 'beginLease', 'lineTaken'],
                  },
                  { guard: { type: 'retryTake', params: ({ event }) => event.output }, target: 'taking', reenter: true },
                  { target: 'idle' },
                ],
                onError: 'idle',
              },
            },
            // Nothing to take: wait for an event or the poll interval (never a tight loop).
            idle: {
              always: { guard: 'draining', target: '#node.ride.gone', actions: 'lineDrained' },
              on: { 'node.wake': { guard: 'mayTake', target: 'taking' } },
              after: { pollEvery: [{ guard: 'mayTake', target: 'taking' }, { target: 'idle', reenter: true }] },
            },
          },
        },
        reserved: {
          // The ticket is armed (admission asks for this state); the user is told only now.
          invoke: [{ src: 'heartbeat' }, { id: 'publish', src: 'publish', input: ({ context }) => context.hold! }],
          on: {
            'session.began': { target: 'serving', actions: ['storeSession', 'lineSessionBegan', 'announceRiding'] },
            'lease.fenced': { target: 'completing', actions: { type: 'storeEnd', params: { reason: 'fenced' } } },
            'drain.deadline': { target: 'completing', actions: [{ type: 'storeEnd', params: { reason: 'shutdown' } }] },
          },
          after: { noShow: { target: 'completing', actions: ['lineNoShow', { type: 'storeEnd', params: { reason: 'no_show' } }] } },
        },
        serving: {
          invoke: { src: 'heartbeat' },
          on: {
            'session.finished': { guard: 'heldSession', target: 'completing', actions: 'storeEnd' },
            'lease.fenced': { actions: { type: 'stopSession', params: { reason: 'fenced' } } },
            'drain.deadline': { actions: { type: 'stopSession', params: { reason: 'shutdown' } } },
          },
        },
        completing: {
          // Redis refuses the completion if the lock is no longer this node's: the last defence.
          invoke: [{ src: 'heartbeat' }, {
            id: 'complete',
            src: 'complete',
            input: ({ context }) => ({ hold: context.hold!, result: context.result!, fenced: context.proof.fenced }),
            onDone: [
              {
                guard: { type: 'completed', params: ({ event }) => event.output },
                target: 'released',
                actions: { type: 'lineCompleted', params: { completed: true } },
              },
              {
                target: 'released',
                actions: ['countRefusal', { type: 'lineCompleted', params: ({ event }) => ({ completed: false, why: event.output.completed ? '' : event.output.why }) }],
              },
            ],
            onError: { target: 'released', actions: ['countRefusal', { type: 'lineCompleted', params: { completed: false, why: 'the completion failed' } }] },
          }],
        },
        released: {
          entry: ['releaseHold', 'announceReleased'],
          always: [{ guard: 'draining', target: 'gone', actions: 'lineDrained' }, { target: 'free' }],
        },
        gone: { type: 'final' },
      },
    },
    lease: {
      initial: 'none',
      states: {
        none: { on: { 'lease.begin': 'active' } },
        active: {
          type: 'parallel',
          on: { 'hold.released': 'none' },
          states: {
            renewal: {
              initial: 'resting',
              states: {
                resting: { after: { renewEvery: 'renewing' } },
                renewing: {
                  invoke: {
                    id: 'renew',
                    src: 'renew',
                    input: ({ context }) => context.hold!,
                    onDone: [
                      {
                        guard: { type: 'renewalConfirmed', params: ({ event }) => event.output },
                        target: 'resting',
                        actions: [{ type: 'storeProof', params: ({ event }) => event.output }, 'announceRenewed'],
                      },
                      { target: 'stopped', actions: 'announceRefused' },
                    ],
                    // Redis slow or away: the standing region's delays decide when that is fatal.
                    onError: 'resting',
                  },
                },
                stopped: {},
              },
              on: { 'lease.fenced': '.stopped' },
            },
            standing: {
              initial: 'held',
              states: {
                held: {
                  on: {
                    'lease.renewed': { target: 'held', reenter: true },
                    'lease.refused': 'fenced',
                    'lease.check': { guard: not('proofValid'), target: 'fenced' },
                  },
                  after: { renewalLate: 'late', fenceMargin: 'fenced' },
                },
                late: {
                  on: {
                    'lease.renewed': 'held',
                    'lease.refused': 'fenced',
                    'lease.check': { guard: not('proofValid'), target: 'fenced' },
                  },
                  after: { fenceMargin: 'fenced' },
                },
                // Final for this hold: nothing makes the lease good again; the ride ends `fenced`.
                fenced: { entry: ['markFenced', 'lineFenced', 'announceFenced'] },
              },
            },
          },
        },
      },
    },
    drain: {
      initial: 'open',
      states: {
        open: { on: { 'node.drain': { target: 'draining', actions: ['startDrain', 'lineDrainBegan'] } } },
        draining: {
          after: { drainDeadline: { target: 'overdue', actions: ['lineDrainDeadline', 'announceDrainDeadline'] } },
        },
        overdue: {},
      },
    },
  },
});

export type NodeMachine = typeof nodeMachine;
export type NodeSnapshot = SnapshotFrom<NodeMachine>;

/** The state a node writes to the registry (what the gateway and the operator see). */
export type NodeRegistryState = 'free' | 'assigned' | 'busy' | 'draining';

export function registryStateOf(snapshot: NodeSnapshot): NodeRegistryState {
  if (snapshot.context.draining) return 'draining';
  if (snapshot.matches({ ride: 'reserved' })) return 'assigned';
  if (snapshot.matches({ ride: 'free' })) return snapshot.context.runtimeIdle ? 'free' : 'busy';
  return 'busy';
}

/**
 * The lifecycle statechart of a framehost runtime.
 *
 *   alive (the inference actor lives exactly as long as this state), two parallel regions:
 *     lifecycle: loading → idle → session (starting → running → stopping) → cleanup → idle …
 *                closing (shutdown: the worker releases the model); a shutdown while loading
 *                closes early (loading.closingEarly: the worker ends its native call first,
 *                bounded by loadTimeout)
 *     watchdog:  quiet → watching ⇄ probing (at heartbeatTimeout the chart asks the actor how
 *                long the worker has been silent: silent for the timeout → recovering; else
 *                re-armed for the rest of the timeout)
 *   recovering (the worker was killed or crashed; a fresh one loads the model again)
 *   failed     (the model could not be loaded)
 *   shutdown   (final)
 *
 * The product's rules are guards and actions here, by name: one session at a time (`busy`),
 * no new session before cleanup ends, commands only while running and only from the owner,
 * no session begun with an expired access token (a running one outlives its token), a session
 * taken back (`session.resume`) only by the user (token `sub`) it belongs to,
 * a session ends by stop or by its loop returning or throwing. Supervision is delays of the
 * chart (`loadTimeout`, `stopDeadline`, …), not timers scattered in classes.
 *
 * Every request event carries a `requestId` and is answered by exactly one emitted
 * `request.accepted` / `request.refused`, in every state but the final one, where the actor
 * is done and createRuntime refuses for it (test/runtime.machine.test.ts checks the matrix). The chart holds no sockets and no ONNX objects: the inference
 * actor below is a placeholder that `createRuntime` replaces with `machine.provide()`.
 */
import { and, assign, emit, fromCallback, not, sendTo, setup } from 'xstate';
import { errorValue, type ErrorCode } from '../errors.ts';
import {
  DEFAULT_LIMITS,
  type EndReason,
  type InferenceInput,
  type Limits,
  type RuntimeContext,
  type RuntimeEmitted,
  type RuntimeEvent,
  type SessionEnd,
} from './types.ts';

export interface RuntimeMachineInput {
  readonly limits?: Partial<Limits>;
}

function requestIdOf(event: RuntimeEvent): string {
  return 'requestId' in event ? event.requestId : '';
}

function sessionIdOf(event: RuntimeEvent): string | undefined {
  return 'sessionId' in event ? event.sessionId : undefined;
}

/**
 * The ownership rule, shared with the runtime's input-frame check (input frames are too many
 * to be chart events, but obey the same rule as commands).
 */
export function isSessionOwner(context: Pick<RuntimeContext, 'session'>, owner: string | undefined): boolean {
  return context.session !== null && owner !== undefined && owner === context.session.owner;
}

/** The session belongs to this user (access tokens' `sub`): it may take control back from any connection. */
export function isSubjectOwner(context: Pick<RuntimeContext, 'session'>, sub: string | undefined): boolean {
  return context.session !== null && typeof context.session.sub === 'string' && sub !== undefined && sub === context.session.sub;
}

/** Input frames, like commands, are taken while the session is starting or running. */
export function acceptsInput(snapshot: { matches(value: object): boolean }): boolean {
  return snapshot.matches({ alive: { lifecycle: { session: 'starting' } } }) || snapshot.matches({ alive: { lifecycle: { session: 'running' } } });
}

const runtimeSetup = setup({
  types: {
    context: {} as RuntimeContext,
    events: {} as RuntimeEvent,
    emitted: {} as RuntimeEmitted,
    input: {} as RuntimeMachineInput,
  },
  actors: {
    // Replaced by createRuntime (src/actors/inference.actor.ts); tests provide their own.
    inference: fromCallback<InferenceInput>(() => undefined),
  },
  guards: {
    /** The sender owns the running session; a stop without an owner comes from the embedding API. */
    isOwner: ({ context, event }) => {
      if (event.type === 'session.stop') return context.session !== null && (event.owner === undefined || isSessionOwner(context, event.owner));
      return event.type === 'session.command' && isSessionOwner(context, event.owner);
    },
    /** The resuming user is the one the session belongs to. */
    isSubjectOwner: ({ context, event }) => event.type === 'session.resume' && isSubjectOwner(context, event.sub),
    /** A start with an access token the server no longer accepts: it may keep a running session, not begin one. */
    tokenExpired: ({ event }) => event.type === 'session.start' && event.subject !== undefined && event.subject.presentedAt >= event.subject.expiresAt,
    commandValid: ({ event }) => event.type === 'session.command' && event.command.ok,
    /** Worker reports about a session other than the current one are stale and ignored. */
    isCurrentSession: ({ context, event }) => context.session !== null && sessionIdOf(event) === context.session.id,
    shutdownRequested: ({ context }) => context.shutdownRequested,
    ownerAway: ({ context }) => context.ownerAway,
    /** The worker has not beaten for the heartbeat timeout (the actor measured it when probed). */
    workerSilent: ({ context, event }) => event.type === 'worker.liveness' && event.silentMs >= context.limits.heartbeatTimeoutMs,
    /** A session that has not finished yet (in cleanup it has, and must not end twice). */
    hasSession: ({ context }) => context.session !== null && context.lastEnd?.sessionId !== context.session.id,
  },
  actions: {
    refuse: emit(({ event }, params: { code: ErrorCode; detail?: string }) => ({
      type: 'request.refused' as const,
      requestId: requestIdOf(event),
      error: errorValue(params.code, params.detail),
    })),
    refuseInvalidCommand: emit(({ event }) => ({
      type: 'request.refused' as const,
      requestId: requestIdOf(event),
      error: event.type === 'session.command' && !event.command.ok ? event.command.error : errorValue('internal'),
    })),
    /** A start after a failed load: the refusal carries the load failure's cause (else it is in /health alone). */
    refuseLoadFailed: emit(({ context, event }) => ({
      type: 'request.refused' as const,
      requestId: requestIdOf(event),
      error: context.loadError?.code === 'load_failed' ? context.loadError : errorValue('load_failed', context.loadError?.message),
    })),
    accept: emit(({ context, event }) => ({
      type: 'request.accepted' as const,
      requestId: requestIdOf(event),
      sessionId: context.session?.id,
    })),
    openSession: assign({
      session: ({ event }) => (event.type === 'session.start' ? { id: event.sessionId, owner: event.owner, ...(event.subject ? { sub: event.subject.sub } : {}) } : null),
      stopReason: null,
      ownerAway: false,
      sessionsStarted: ({ context }) => context.sessionsStarted + 1,
    }),
    announceSession: emit(({ context }) => ({ type: 'session.began' as const, session: context.session! })),
    startInWorker: sendTo('inference', ({ context }): InferenceInput => ({ type: 'session.start', sessionId: context.session!.id })),
    markStopping: assign({
      stopReason: ({ context, event }, params: { reason?: EndReason } | undefined) =>
        params?.reason ?? (event.type === 'session.stop' ? (event.reason ?? 'stopped') : context.stopReason ?? 'stopped'),
    }),
    stopInWorker: sendTo('inference', ({ context }): InferenceInput => ({
      type: 'session.stop',
      sessionId: context.session!.id,
      reason: context.stopReason ?? 'stopped',
    })),
    forwardCommand: sendTo('inference', ({ context, event }): InferenceInput => {
      const command = event.type === 'session.command' && event.command.ok ? event.command : { name: '', args: {} };
      return { type: 'session.command', sessionId: context.session!.id, requestId: requestIdOf(event), name: command.name, args: command.args };
    }),
    /** Record how the session ended: the worker's own report, or the reason given by the chart. */
    recordEnd: assign({
      lastEnd: ({ context, event }, params: { reason?: EndReason; code?: ErrorCode; detail?: string } | undefined): SessionEnd | null => {
        if (!context.session) return context.lastEnd;
        if (event.type === 'worker.session.ended' && !params?.reason) {
          // A loop that returns while being stopped was stopped, whatever it says.
          const reason = context.stopReason && event.reason !== 'error' ? context.stopReason : event.reason;
          return { sessionId: context.session.id, reason, ...(event.error ? { error: event.error } : {}) };
        }
        const reason = params?.reason ?? 'crashed';
        const error = params?.code ? errorValue(params.code, params.detail) : event.type === 'worker.exited' ? event.error : undefined;
        return { sessionId: context.session.id, reason, ...(error ? { error } : {}) };
      },
    }),
    announceEnd: emit(({ context }) => ({ type: 'session.finished' as const, end: context.lastEnd! })),
    closeSession: assign({ session: null, stopReason: null, ownerAway: false }),
    requestShutdown: assign({ shutdownRequested: true }),
    markOwnerAway: assign({ ownerAway: true }),
    markOwnerBack: assign({ ownerAway: false }),
    closeWorker: sendTo('inference', (): InferenceInput => ({ type: 'worker.close' })),
    probeWorker: sendTo('inference', (): InferenceInput => ({ type: 'worker.probe' })),
    noteLiveness: assign({ workerSilentMs: ({ event }) => (event.type === 'worker.liveness' ? Math.max(0, event.silentMs) : 0) }),
    resetLiveness: assign({ workerSilentMs: 0 }),
    storeModel: assign({ model: ({ event, context }) => (event.type === 'worker.ready' ? event.model : context.model), loadError: null }),
    storeLoadError: assign({
      loadError: ({ event }, params: { code?: ErrorCode; detail?: string } | undefined) => {
        if (params?.code) return errorValue(params.code, params.detail);
        if (event.type === 'worker.failed' || event.type === 'worker.exited') return event.error;
        return errorValue('load_failed');
      },
    }),
    countWorkerStart: assign({ workerStarts: ({ context }) => context.workerStarts + 1 }),
  },
  delays: {
    loadTimeout: ({ context }) => context.limits.loadTimeoutMs,
    startTimeout: ({ context }) => context.limits.startTimeoutMs,
    stopDeadline: ({ context }) => context.limits.stopDeadlineMs,
    cleanupTimeout: ({ context }) => context.limits.cleanupTimeoutMs,
    closeTimeout: ({ context }) => context.limits.closeTimeoutMs,
    orphanTimeout: ({ context }) => context.limits.orphanTimeoutMs,
    /** Until the worker would have been silent for the timeout: the full timeout, less the silence already seen. */
    heartbeatTimeout: ({ context }) => Math.max(1, context.limits.heartbeatTimeoutMs - context.workerSilentMs),
  },
});

/** Commands only from the owner, only valid ones; either way the session runs on. */
const OWNER_COMMAND = [
  { guard: not('isOwner'), actions: { type: 'refuse', params: { code: 'not_owner' } } },
  { guard: 'commandValid', actions: ['forwardCommand', 'accept'] },
  { actions: 'refuseInvalidCommand' },
] as const;

export const runtimeMachine = runtimeSetup.createMachine({
  id: 'framehost',
  context: ({ input }) => ({
    limits: { ...DEFAULT_LIMITS, ...input.limits },
    model: null,
    session: null,
    stopReason: null,
    lastEnd: null,
    loadError: null,
    shutdownRequested: false,
    ownerAway: false,
    workerStarts: 0,
    sessionsStarted: 0,
    workerSilentMs: 0,
  }),
  initial: 'alive',
  states: {
    alive: {
      // Two regions: the lifecycle, and a watchdog on the worker's heartbeat (a wedged native
      // call or a JavaScript loop that never yields shows as silence).
      type: 'parallel',
      invoke: { id: 'inference', src: 'inference' },
      entry: 'countWorkerStart',
      on: {
        // The worker died under us (outside loading and closing, which handle it themselves).
        'worker.exited': [
          {
            guard: 'hasSession',
            target: 'recovering',
            actions: [{ type: 'recordEnd', params: { reason: 'crashed' } }, 'announceEnd', 'closeSession'],
          },
          { target: 'recovering' },
        ],
      },
      states: {
        lifecycle: {
          initial: 'loading',
          states: {
            loading: {
              initial: 'underway',
              on: {
                // A worker that dies while loading is not respawned in a loop (piscina's lesson);
                // one that dies while closing early ends the shutdown.
                'worker.exited': [
                  { guard: 'shutdownRequested', target: '#framehost.shutdown' },
                  { target: '#framehost.failed', actions: 'storeLoadError' },
                ],
                'session.start': [
                  { guard: 'shutdownRequested', actions: { type: 'refuse', params: { code: 'shutting_down' } } },
                  { actions: { type: 'refuse', params: { code: 'not_ready' } } },
                ],
                'session.stop': { actions: { type: 'refuse', params: { code: 'no_session' } } },
                'session.resume': { actions: { type: 'refuse', params: { code: 'no_session' } } },
                'session.command': { actions: { type: 'refuse', params: { code: 'no_session' } } },
              },
              after: {
                // Also the bound on closing early: a load still inside a native call at its timeout
                // is wedged, and ending the thread under it is the only way left.
                loadTimeout: [
                  { guard: 'shutdownRequested', target: '#framehost.shutdown', actions: { type: 'storeLoadError', params: { code: 'load_failed', detail: 'load timed out' } } },
                  { target: '#framehost.failed', actions: { type: 'storeLoadError', params: { code: 'load_failed', detail: 'load timed out' } } },
                ],
              },
              states: {
                underway: {
                  on: {
                    'worker.ready': { target: '#framehost.alive.lifecycle.idle', actions: 'storeModel' },
                    'worker.failed': { target: '#framehost.failed', actions: 'storeLoadError' },
                    'runtime.shutdown': { target: 'closingEarly', actions: 'requestShutdown' },
                  },
                },
                // Shut down before the model loaded. The worker may be inside ONNX Runtime's native
                // session creation (seconds), and ending its thread there aborts the process
                // (SIGABRT): it is told to close, finishes the native call it is in, starts no
                // other, releases what it created and answers `closed`; only then does the thread
                // end. Its ready or failed, if the load ends first, changes nothing: the close is
                // already on its way. The phase is `closing` (phase.ts).
                closingEarly: {
                  entry: 'closeWorker',
                  on: { 'worker.closed': '#framehost.shutdown' },
                },
              },
            },
            idle: {
              on: {
                'session.start': [
                  { guard: 'tokenExpired', actions: { type: 'refuse', params: { code: 'token_expired', detail: 'an expired token keeps a running session but starts none' } } },
                  { target: 'session', actions: ['openSession', 'accept', 'announceSession'] },
                ],
                'session.stop': { actions: { type: 'refuse', params: { code: 'no_session' } } },
                'session.resume': { actions: { type: 'refuse', params: { code: 'no_session' } } },
                'session.command': { actions: { type: 'refuse', params: { code: 'no_session' } } },
                'runtime.shutdown': { target: 'closing', actions: 'requestShutdown' },
              },
            },
            session: {
              initial: 'starting',
              on: {
                // Single session: refused with a reason, never queued, never disturbing the session.
                'session.start': [
                  { guard: 'shutdownRequested', actions: { type: 'refuse', params: { code: 'shutting_down' } } },
                  { actions: { type: 'refuse', params: { code: 'busy' } } },
                ],
                'worker.session.ended': { guard: 'isCurrentSession', target: 'cleanup', actions: ['recordEnd', 'announceEnd'] },
                // The session's user, from any connection; the transport then counts the owner present.
                'session.resume': [{ guard: 'isSubjectOwner', actions: 'accept' }, { actions: { type: 'refuse', params: { code: 'not_owner' } } }],
                'owner.left': { guard: 'isCurrentSession', actions: 'markOwnerAway' },
                'owner.returned': { guard: 'isCurrentSession', actions: 'markOwnerBack' },
              },
              states: {
                starting: {
                  entry: 'startInWorker',
                  on: {
                    'worker.session.started': { guard: 'isCurrentSession', target: 'running' },
                    'session.stop': [
                      { guard: 'isOwner', target: 'stopping', actions: ['markStopping', 'accept'] },
                      { actions: { type: 'refuse', params: { code: 'not_owner' } } },
                    ],
                    // The worker takes messages in order, so a command sent now reaches the new session.
                    'session.command': OWNER_COMMAND,
                    'runtime.shutdown': {
                      target: 'stopping',
                      actions: ['requestShutdown', { type: 'markStopping', params: { reason: 'shutdown' } }],
                    },
                  },
                  after: {
                    startTimeout: {
                      target: '#framehost.recovering',
                      actions: [
                        { type: 'recordEnd', params: { reason: 'killed', code: 'timeout', detail: 'the session did not start in time' } },
                        'announceEnd',
                        'closeSession',
                      ],
                    },
                  },
                },
                running: {
                  // Orphaning: the owner's connection is gone; the session runs on for orphanTimeout,
                  // and the owner (proving it with its token, at the transport) may come back.
                  initial: 'attended',
                  states: {
                    attended: { always: { guard: 'ownerAway', target: 'orphaned' } },
                    orphaned: {
                      always: { guard: not('ownerAway'), target: 'attended' },
                      after: {
                        orphanTimeout: {
                          target: '#framehost.alive.lifecycle.session.stopping',
                          actions: { type: 'markStopping', params: { reason: 'orphaned' } },
                        },
                      },
                    },
                  },
                  on: {
                    'session.command': OWNER_COMMAND,
                    'session.stop': [
                      { guard: 'isOwner', target: 'stopping', actions: ['markStopping', 'accept'] },
                      { actions: { type: 'refuse', params: { code: 'not_owner' } } },
                    ],
                    'runtime.shutdown': {
                      target: 'stopping',
                      actions: ['requestShutdown', { type: 'markStopping', params: { reason: 'shutdown' } }],
                    },
                  },
                },
                stopping: {
                  entry: 'stopInWorker',
                  on: {
                    'session.stop': [
                      { guard: 'isOwner', actions: 'accept' }, // idempotent: already stopping
                      { actions: { type: 'refuse', params: { code: 'not_owner' } } },
                    ],
                    'session.command': { actions: { type: 'refuse', params: { code: 'no_session', detail: 'the session is stopping' } } },
                    'runtime.shutdown': { actions: 'requestShutdown' },
                  },
                  after: {
                    // The loop ignored stop: terminate its worker (the only hard stop there is) and reload.
                    stopDeadline: {
                      target: '#framehost.recovering',
                      actions: [
                        { type: 'recordEnd', params: { reason: 'killed', code: 'timeout', detail: 'the loop ignored stop past the deadline' } },
                        'announceEnd',
                        'closeSession',
                      ],
                    },
                  },
                },
              },
            },
            cleanup: {
              // The worker runs the model's session-end hook and drops the session's state.
              on: {
                'worker.session.cleaned': [
                  { guard: and(['isCurrentSession', 'shutdownRequested']), target: 'closing', actions: 'closeSession' },
                  { guard: 'isCurrentSession', target: 'idle', actions: 'closeSession' },
                ],
                // The session already finished: the worker's death ends only the cleanup.
                'worker.exited': { target: '#framehost.recovering', actions: 'closeSession' },
                'session.start': [
                  { guard: 'shutdownRequested', actions: { type: 'refuse', params: { code: 'shutting_down' } } },
                  { actions: { type: 'refuse', params: { code: 'busy', detail: 'the last session is still being cleaned up' } } },
                ],
                'session.stop': { actions: { type: 'refuse', params: { code: 'no_session' } } },
                'session.resume': { actions: { type: 'refuse', params: { code: 'no_session' } } },
                'session.command': { actions: { type: 'refuse', params: { code: 'no_session' } } },
                'runtime.shutdown': { actions: 'requestShutdown' },
              },
              after: {
                cleanupTimeout: { target: '#framehost.recovering', actions: 'closeSession' },
              },
            },
            closing: {
              entry: 'closeWorker',
              on: {
                'worker.closed': '#framehost.shutdown',
                'worker.exited': '#framehost.shutdown',
                'session.start': { actions: { type: 'refuse', params: { code: 'shutting_down' } } },
                'session.stop': { actions: { type: 'refuse', params: { code: 'no_session' } } },
                'session.resume': { actions: { type: 'refuse', params: { code: 'no_session' } } },
                'session.command': { actions: { type: 'refuse', params: { code: 'no_session' } } },
              },
              // Leaving `alive` stops the inference actor, whose cleanup terminates the worker.
              after: { closeTimeout: '#framehost.shutdown' },
            },
          },
        },
        watchdog: {
          initial: 'quiet',
          states: {
            // While loading, loadTimeout supervises: a load may block the thread for long.
            quiet: { on: { 'worker.ready': { target: 'watching', actions: 'resetLiveness' } } },
            // The worker beats about once a second; the actor keeps the time of the last beat, and
            // the chart asks for it only when the timeout could have run out: two events per
            // timeout instead of one per beat, with the timeout still exact.
            watching: { after: { heartbeatTimeout: 'probing' } },
            probing: {
              entry: 'probeWorker',
              on: {
                'worker.liveness': [
                  {
                    guard: and(['workerSilent', 'hasSession']),
                    target: '#framehost.recovering',
                    actions: [
                      { type: 'recordEnd', params: { reason: 'crashed', code: 'worker_crashed', detail: 'the worker stopped answering (no heartbeat)' } },
                      'announceEnd',
                      'closeSession',
                    ],
                  },
                  { guard: 'workerSilent', target: '#framehost.recovering', actions: 'closeSession' },
                  { target: 'watching', actions: 'noteLiveness' },
                ],
              },
            },
          },
        },
      },
    },
    recovering: {
      // The old worker is already terminated (leaving `alive` stopped its actor); start a fresh one.
      always: [{ guard: 'shutdownRequested', target: 'shutdown' }, { target: 'alive' }],
    },
    failed: {
      on: {
        'runtime.reload': 'alive',
        'runtime.shutdown': 'shutdown',
        'session.start': { actions: 'refuseLoadFailed' },
        'session.stop': { actions: { type: 'refuse', params: { code: 'no_session' } } },
        'session.resume': { actions: { type: 'refuse', params: { code: 'no_session' } } },
        'session.command': { actions: { type: 'refuse', params: { code: 'no_session' } } },
      },
    },
    shutdown: {
      type: 'final',
    },
  },
});

export type RuntimeMachine = typeof runtimeMachine;

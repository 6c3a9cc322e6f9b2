/**
 * The lifecycle of one publication to an SFU (`--publish janus://…` or `whip+http://…`;
 * src/media/sfu-publisher.ts drives it): connecting (for Janus session, handle, room, offer →
 * answer; for WHIP one POST of the offer), publishing (Janus's events watched on its long poll, a
 * keep-alive on a timer; WHIP has neither, so its actors are idle), retrying after a pause that
 * doubles up to a bound when the SFU goes away or refuses, stopping (Janus: detach and destroy;
 * WHIP: DELETE of the resource; with a deadline) at shutdown. The HTTP calls are actors provided
 * by the edge; every rule here is a named guard and every wait a named delay, so the chart is
 * tested on snapshots with a fake clock.
 */
import { assign, fromCallback, fromPromise, setup } from 'xstate';
import { errorValue, FramehostError, type ErrorValue } from '../errors.ts';

/** What the connect actor hands the chart: the publication (Janus's ids or WHIP's resource, for the edge) with our side to close. */
export interface PublisherLink {
  /** Our side of it (the peer); the SFU's side is ended by the hangup actor or left to time out. */
  close(): void;
}

export interface PublisherTimings {
  /** Janus's session, handle, room, offer and answer (or WHIP's POST and answer) must all come within this. */
  readonly connectTimeoutMs: number;
  /** An explicit keep-alive this often (Janus drops a session silent for its session_timeout, 60 s by default; WHIP's keep-alive does nothing). */
  readonly keepaliveMs: number;
  /** The first pause before connecting again; it doubles on each failure up to `maxRetryMs`. */
  readonly retryMs: number;
  readonly maxRetryMs: number;
  /** Detach and destroy (WHIP: DELETE) at shutdown may take this long; then we go anyway. */
  readonly stopTimeoutMs: number;
  /** Failed connections in a row before giving up (0: never give up, the default). */
  readonly maxAttempts: number;
}

export const DEFAULT_PUBLISHER_TIMINGS: PublisherTimings = { connectTimeoutMs: 10_000, keepaliveMs: 25_000, retryMs: 1000, maxRetryMs: 30_000, stopTimeoutMs: 2000, maxAttempts: 0 };

export type PublisherEvent =
  | { type: 'publisher.stop' }
  /** Janus hung up or detached the publisher, or its long poll failed. */
  | { type: 'janus.gone'; error: ErrorValue }
  /** Our peer to the SFU failed or closed. */
  | { type: 'media.failed' };

export interface PublisherContext {
  readonly timings: PublisherTimings;
  /** Failed connections since the last success. */
  readonly attempts: number;
  readonly link: PublisherLink | null;
  readonly lastError: ErrorValue | null;
}

/** A foreign or coded error as a value (an SFU's refusal keeps its code; anything else is unreachable). */
export function publishError(err: unknown): ErrorValue {
  if (err instanceof FramehostError) return { code: err.code, message: err.message };
  return errorValue('sfu_unreachable', err instanceof Error ? err.message : String(err));
}

export const publisherMachine = setup({
  types: {
    context: {} as PublisherContext,
    events: {} as PublisherEvent,
    input: {} as { timings: PublisherTimings },
  },
  actors: {
    // Placeholders: src/media/janus/publisher.ts and src/media/whip/publisher.ts provide the implementations; tests provide fakes.
    connect: fromPromise<PublisherLink, { attempt: number }>(async () => {
      throw new Error('connect is provided by the publisher');
    }),
    watch: fromCallback<PublisherEvent, { link: PublisherLink }>(() => undefined),
    keepalive: fromPromise<void, { link: PublisherLink }>(async () => undefined),
    hangup: fromPromise<void, { link: PublisherLink }>(async () => undefined),
  },
  guards: {
    attemptsExhausted: ({ context }) => context.timings.maxAttempts > 0 && context.attempts >= context.timings.maxAttempts,
  },
  actions: {
    keepLink: assign({ link: (_, params: { link: PublisherLink }) => params.link, attempts: 0, lastError: null }),
    countAttempt: assign({ attempts: ({ context }) => context.attempts + 1 }),
    noteError: assign({ lastError: (_, params: { error: ErrorValue }) => params.error }),
    // An effect the edge provides: close our peer and tell the SFU, best effort, without waiting.
    releaseLink: (_, _params: { link: PublisherLink | null }) => undefined,
    forgetLink: assign({ link: null }),
  },
  delays: {
    connectTimeout: ({ context }) => context.timings.connectTimeoutMs,
    keepaliveInterval: ({ context }) => context.timings.keepaliveMs,
    retryDelay: ({ context }) => Math.min(context.timings.retryMs * 2 ** Math.max(0, context.attempts - 1), context.timings.maxRetryMs),
    stopTimeout: ({ context }) => context.timings.stopTimeoutMs,
  },
}).createMachine({
  id: 'publisher',
  context: ({ input }) => ({ timings: input.timings, attempts: 0, link: null, lastError: null }),
  initial: 'connecting',
  states: {
    connecting: {
      invoke: {
        src: 'connect',
        input: ({ context }) => ({ attempt: context.attempts + 1 }),
        onDone: { target: 'publishing', actions: { type: 'keepLink', params: ({ event }) => ({ link: event.output }) } },
        onError: { target: 'retrying', actions: { type: 'noteError', params: ({ event }) => ({ error: publishError(event.error) }) } },
      },
      after: { connectTimeout: { target: 'retrying', actions: { type: 'noteError', params: () => ({ error: errorValue('timeout', 'the SFU did not take the publisher in time') }) } } },
      on: { 'publisher.stop': 'stopped' },
    },
    publishing: {
      invoke: { src: 'watch', input: ({ context }) => ({ link: context.link! }) },
      initial: 'steady',
      states: {
        steady: { after: { keepaliveInterval: 'keepingAlive' } },
        keepingAlive: {
          invoke: {
            src: 'keepalive',
            input: ({ context }) => ({ link: context.link! }),
            onDone: 'steady',
            onError: { target: '#publisher.retrying', actions: { type: 'noteError', params: ({ event }) => ({ error: publishError(event.error) }) } },
          },
        },
      },
      on: {
        'janus.gone': { target: 'retrying', actions: { type: 'noteError', params: ({ event }) => ({ error: event.error }) } },
        'media.failed': { target: 'retrying', actions: { type: 'noteError', params: () => ({ error: errorValue('sfu_unreachable', 'the media connection to the SFU failed') }) } },
        'publisher.stop': 'stopping',
      },
    },
    retrying: {
      entry: [{ type: 'releaseLink', params: ({ context }) => ({ link: context.link }) }, 'forgetLink', 'countAttempt'],
      always: { guard: 'attemptsExhausted', target: 'failed' },
      after: { retryDelay: 'connecting' },
      on: { 'publisher.stop': 'stopped' },
    },
    stopping: {
      invoke: { src: 'hangup', input: ({ context }) => ({ link: context.link! }), onDone: 'stopped', onError: 'stopped' },
      after: { stopTimeout: 'stopped' },
      exit: 'forgetLink',
    },
    stopped: { type: 'final' },
    failed: { type: 'final' },
  },
});

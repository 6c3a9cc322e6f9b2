/**
 * Which rendition one viewer of the media room should get (src/media/room.ts drives it, one actor
 * per outlet): the top one while its receiver reports are clean, the low one (a third of the
 * bitrate) after sustained loss or when it stops reporting (a frozen or stalled viewer), and back
 * up after sustained clean reports. Pure: the room sends each report's loss and acts on the state
 * (`top` or `low`); the thresholds are the limits below, and each move is a named guard or delay.
 * A viewer that has not reported yet stays on top: no report is no evidence of trouble until it has
 * shown it reports at all.
 */
import { assign, setup } from 'xstate';

export interface RenditionLimits {
  /** A report whose fraction lost is above this is lossy (RFC 3550's 8-bit figure, as a share). */
  readonly lossyFraction: number;
  /** Lossy reports (no clean one between) for this long move a viewer down. */
  readonly downAfterMs: number;
  /** No report at all for this long (after a first one) moves a viewer down. */
  readonly silentAfterMs: number;
  /** Clean reports for this long move a viewer back up; doubled at each further move down… */
  readonly upAfterMs: number;
  /** …up to this (a viewer whose line cannot carry the top rate does not bounce every few seconds). */
  readonly maxUpAfterMs: number;
}

export const DEFAULT_RENDITION_LIMITS: RenditionLimits = { lossyFraction: 0.05, downAfterMs: 2000, silentAfterMs: 3000, upAfterMs: 4000, maxUpAfterMs: 30_000 };

export type RenditionEvent = { type: 'report'; fractionLost: number };

export interface RenditionContext {
  readonly limits: RenditionLimits;
  /** Moves down so far: the wait before the next move up doubles with each. */
  readonly downs: number;
}

export const renditionMachine = setup({
  types: {
    context: {} as RenditionContext,
    events: {} as RenditionEvent,
    input: {} as { limits: RenditionLimits },
  },
  guards: {
    lossy: ({ context, event }) => event.fractionLost > context.limits.lossyFraction,
    clean: ({ context, event }) => event.fractionLost <= context.limits.lossyFraction,
  },
  actions: {
    countDown: assign({ downs: ({ context }) => context.downs + 1 }),
  },
  delays: {
    downAfter: ({ context }) => context.limits.downAfterMs,
    silentAfter: ({ context }) => context.limits.silentAfterMs,
    upAfter: ({ context }) => Math.min(context.limits.maxUpAfterMs, context.limits.upAfterMs * 2 ** Math.max(0, context.downs - 1)),
  },
}).createMachine({
  id: 'rendition',
  context: ({ input }) => ({ limits: input.limits, downs: 0 }),
  initial: 'unheard',
  states: {
    // On top until its first report: a viewer still connecting has nothing to report.
    unheard: {
      on: { report: [{ guard: 'lossy', target: 'top.suspect' }, { target: 'top.clean' }] },
    },
    top: {
      initial: 'clean',
      states: {
        // Each clean report re-enters, restarting the silence timer.
        clean: {
          after: { silentAfter: '#rendition.low' },
          on: { report: [{ guard: 'lossy', target: 'suspect' }, { target: 'clean', reenter: true }] },
        },
        // Lossy: down unless a clean report comes first (further lossy reports keep the timer running).
        suspect: {
          after: { downAfter: '#rendition.low' },
          on: { report: { guard: 'clean', target: 'clean' } },
        },
      },
    },
    low: {
      entry: 'countDown',
      initial: 'held',
      states: {
        // Until a clean report: a frozen viewer stays here.
        held: {
          on: { report: { guard: 'clean', target: 'recovering' } },
        },
        // Clean reports for upAfter (from the first) move it up; a lossy report or silence starts over.
        recovering: {
          after: { upAfter: '#rendition.top' },
          initial: 'listening',
          states: {
            // Each clean report re-enters this child only: the silence timer restarts, upAfter does not.
            listening: {
              after: { silentAfter: '#rendition.low.held' },
              on: { report: [{ guard: 'lossy', target: '#rendition.low.held' }, { target: 'listening', reenter: true }] },
            },
          },
        },
      },
    },
  },
});

/** The rendition a chart's state asks for. */
export const wantedRendition = (value: unknown): 'top' | 'low' => (typeof value === 'object' && value !== null && 'low' in value ? 'low' : 'top');

/**
 * The lifecycle of one WebRTC peer (src/transport/webrtc/peer.ts drives it): answering an offer,
 * waiting for the connection, connected, closed. Pure: the peer sends events and runs the effects
 * when the chart says so; the rules (one offer at a time, a peer that never answered leaves no
 * trace, a connection that does not come in time closes the peer) are states, guards and a delay.
 */
import { assign, setup } from 'xstate';

export type PeerCloseReason = 'closed' | 'failed' | 'timeout' | 'disconnected' | 'shutdown';

export type PeerEvent =
  | { type: 'peer.offer' }
  | { type: 'peer.answered' }
  | { type: 'peer.answer_failed' }
  | { type: 'peer.connected' }
  | { type: 'peer.failed' }
  | { type: 'peer.close'; reason: PeerCloseReason };

export interface PeerContext {
  readonly connectTimeoutMs: number;
  /** Offers answered so far (a failed first offer closes the peer; a failed renegotiation does not). */
  readonly answered: number;
  readonly connected: boolean;
  readonly closeReason: PeerCloseReason | null;
}

export const peerMachine = setup({
  types: {
    context: {} as PeerContext,
    events: {} as PeerEvent,
    input: {} as { connectTimeoutMs: number },
  },
  guards: {
    neverAnswered: ({ context }) => context.answered === 0,
    wasConnected: ({ context }) => context.connected,
  },
  actions: {
    countAnswer: assign({ answered: ({ context }) => context.answered + 1 }),
    markConnected: assign({ connected: true }),
    closeWith: assign({ closeReason: (_, params: { reason: PeerCloseReason }) => params.reason }),
    closeAsAsked: assign({ closeReason: ({ event }) => (event.type === 'peer.close' ? event.reason : 'closed') }),
  },
  delays: {
    connectTimeout: ({ context }) => context.connectTimeoutMs,
  },
}).createMachine({
  id: 'peer',
  context: ({ input }) => ({ connectTimeoutMs: input.connectTimeoutMs, answered: 0, connected: false, closeReason: null }),
  initial: 'new',
  on: {
    'peer.close': { target: '.closed', actions: 'closeAsAsked' },
    'peer.failed': { target: '.closed', actions: { type: 'closeWith', params: { reason: 'failed' } } },
  },
  states: {
    new: { on: { 'peer.offer': 'answering' } },
    // One offer at a time: another one here has no transition (the peer refuses it).
    answering: {
      on: {
        'peer.answered': [
          { guard: 'wasConnected', target: 'connected', actions: 'countAnswer' },
          { target: 'connecting', actions: 'countAnswer' },
        ],
        'peer.answer_failed': [
          { guard: 'neverAnswered', target: 'closed', actions: { type: 'closeWith', params: { reason: 'closed' } } },
          { guard: 'wasConnected', target: 'connected' },
          { target: 'connecting' },
        ],
        'peer.connected': { actions: 'markConnected' },
      },
    },
    connecting: {
      after: { connectTimeout: { target: 'closed', actions: { type: 'closeWith', params: { reason: 'timeout' } } } },
      on: {
        'peer.offer': 'answering',
        'peer.connected': { target: 'connected', actions: 'markConnected' },
      },
    },
    connected: {
      on: { 'peer.offer': 'answering' },
    },
    closed: { type: 'final' },
  },
});

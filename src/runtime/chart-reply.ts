/**
 * Catches the chart's answer to the one request being sent right now: XState handles an event
 * synchronously, and the chart emits exactly one `request.accepted` or `request.refused` for it.
 */
import { errorValue, type Result } from '../errors.ts';

export type Reply = Result<{ sessionId?: string }>;

export class ChartReply {
  private pending: { requestId: string; result?: Reply } | null = null;

  /** Sends through `send` and returns the answer caught for `requestId` during it. */
  ask(requestId: string, type: string, send: () => void): Reply {
    // XState queues an event sent while it processes another, so a request made from inside a
    // runtime listener could not be answered now: refuse it plainly rather than guess.
    if (this.pending) return { ok: false, error: errorValue('internal', 'a runtime request was made from inside a runtime listener; defer it (queueMicrotask)') };
    this.pending = { requestId };
    try {
      send();
      return this.pending.result ?? { ok: false, error: errorValue('internal', `no answer to ${type}`) };
    } finally {
      this.pending = null;
    }
  }

  /** The chart's answer to a request; ignored unless it is the one being asked. */
  answer(requestId: string, result: Reply): void {
    if (this.pending?.requestId === requestId) this.pending.result = result;
  }
}

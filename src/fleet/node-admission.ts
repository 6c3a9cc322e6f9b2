/**
 * Who may start a session on a fleet node: only the holder of the one ticket the node armed
 * (the chart is `reserved` for it), once, for the user the gateway admitted, while the node
 * can still prove it holds the ride. The session that admission lets in begins synchronously
 * inside runtime.start(), so admission marks the hold it admitted and `began` picks it up.
 */
import { fail, type Result } from '../errors.ts';
import { mayAct, type NodeSnapshot } from '../machines/node.machine.ts';
import { verifyTicket } from './ticket.ts';

/** How many used tickets are remembered: a ticket expires within `noShowMs` anyway. */
const USED_KEPT = 256;

export interface AdmissionDeps {
  readonly nodeId: string;
  readonly secret: string;
  /** Monotonic clock, ms (the chart's). */
  readonly now: () => number;
  readonly snapshot: () => NodeSnapshot;
  /** The user (`sub`) of a held job, if its request named one. */
  readonly subOf: (jobId: string) => string | undefined;
  /** Ask the chart to check its lease now (it fences if the proof is too old). */
  readonly checkLease: (why: string) => void;
}

/** The ticket being admitted right now, and the tickets already used. */
export class NodeAdmission {
  /** The job whose ticket `admit` let through for the `session:start` being handled right now. */
  private admitting: string | null = null;
  /** Tickets already used, newest last. */
  private readonly used: string[] = [];

  constructor(private readonly d: AdmissionDeps) {}

  /** Admission for `session:start` (TransportOptions.admit): only the armed ticket passes. */
  admit(request: { readonly ticket?: string; readonly sub?: string }): Result {
    const { d } = this;
    const ticket = request.ticket;
    if (typeof ticket === 'string' && this.used.includes(ticket)) return fail('ticket_used');
    if (ticket === undefined) return fail('ticket_invalid', 'this node admits only ticket holders sent by the fleet gateway');
    const v = verifyTicket(ticket, d.secret);
    if (!v.ok) return v;
    if (v.claims.node !== d.nodeId) return fail('ticket_invalid', 'the ticket is for another node');
    const snap = d.snapshot();
    const hold = snap.context.hold;
    if (!snap.matches({ ride: 'reserved' }) || hold?.ticket !== ticket) return fail('ticket_invalid', 'this node is not waiting for this ticket');
    // The ride belongs to the user the gateway admitted: a ticket passed to another user's token is refused.
    const rideSub = d.subOf(hold.jobId);
    if (rideSub !== undefined && request.sub !== undefined && request.sub !== rideSub) return fail('forbidden', 'this ride belongs to another user');
    if (!mayAct(snap.context, d.now())) {
      d.checkLease('lease not proven at admission');
      return fail('ticket_invalid', 'this node no longer holds the ride');
    }
    this.admitting = hold.jobId;
    queueMicrotask(() => {
      if (this.admitting === hold.jobId) this.admitting = null; // the start was refused after admission (not_ready…): the ticket stays armed
    });
    return { ok: true };
  }

  /** A session began: true if it is the one admission let in for the held ride (its ticket is now used). */
  began(): boolean {
    const jobId = this.admitting;
    if (!jobId) return false;
    this.admitting = null;
    const hold = this.d.snapshot().context.hold;
    if (hold?.jobId !== jobId) return false;
    this.used.push(hold.ticket);
    if (this.used.length > USED_KEPT) this.used.shift();
    return true;
  }
}

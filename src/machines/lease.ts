/**
 * The fleet node's lease rule, as pure functions: the node chart's guards and the frame path
 * (src/fleet/node.ts `gate`, asked synchronously for every frame, model message, command and
 * input frame) share this one definition, so the chart and the wire can never disagree.
 *
 * The lease is the BullMQ job lock. Redis sets its expiry when it runs a renewal, which is after
 * the node issued it; so a renewal issued at `t` and confirmed proves the lock lives until at
 * least `t + leaseMs`. The node treats it as its own only until `t + leaseMs - fenceMarginMs`:
 * the margin covers its timers' lateness and the clocks' drift, so it is silent before another
 * node can have been given the user. The clock is monotonic (performance.now()), which keeps
 * running while the process is frozen (SIGSTOP): a resumed node sees at once how old its proof is.
 */

export interface LeaseTimes {
  /** BullMQ lockDuration. */
  readonly leaseMs: number;
  /** How long before the lock's earliest expiry the node stops acting on it. */
  readonly fenceMarginMs: number;
}

export interface LeaseProof {
  /** Monotonic ms when the last renewal that Redis confirmed was issued (or the job was taken). */
  readonly proofAt: number;
  /** A renewal was refused, or the node fenced itself: nothing can make this lease good again. */
  readonly fenced: boolean;
}

/** How long a proof is good for: `leaseMs - fenceMarginMs`, never below 0. */
export function proofLifetimeMs(t: LeaseTimes): number {
  return Math.max(0, t.leaseMs - t.fenceMarginMs);
}

/** May this node act on its user at monotonic time `now`: send a frame, take a command? */
export function leaseHeld(proof: LeaseProof, now: number, t: LeaseTimes): boolean {
  return !proof.fenced && now - proof.proofAt <= proofLifetimeMs(t);
}

/** A confirmed renewal issued at `issuedAt` moves the proof forward (never back: replies may come out of order). */
export function renewedProof(proof: LeaseProof, issuedAt: number): LeaseProof {
  return { proofAt: Math.max(proof.proofAt, issuedAt), fenced: proof.fenced };
}

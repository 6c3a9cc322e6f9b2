/**
 * The BullMQ jobs a node holds, at the edge of its chart: the chart knows a hold by ids
 * (NodeHold); this keeps the job object and the lock token only this node knows, and does what
 * needs them: take the next job, publish to the gateway (the job's progress), renew the lock,
 * complete the job. Every Redis call is bounded (`redisTimeoutMs`, the lease for a renewal).
 */
import type { Logger } from 'pino';
import type { CompleteOutput, NodeHold, NodeRideResult, RenewOutput, TakeOutput } from '../machines/node.machine.ts';
import { messageOf, withTimeout } from './deadline.ts';
import type { AssignmentProgress, RideResult, RidingProgress } from './events.ts';
import type { NodeSettings } from './options.ts';
import type { NodeLinks, RideJob } from './node-links.ts';
import { mintTicket } from './ticket.ts';

/** What the edge keeps of a held job: the BullMQ object and the lock token only this node knows. */
export interface Held {
  readonly job: RideJob;
  readonly token: string;
  /** Frames, messages and requests the gate refused for this hold. */
  withheld: number;
  /** For the `job.taken` line: when the take was sent (ms since the epoch), and how long the ride had waited. */
  readonly issuedAt: number;
  readonly waitedMs: number;
}

export interface HeldJobsDeps {
  readonly settings: Pick<NodeSettings, 'nodeId' | 'secret' | 'noShowMs' | 'leaseMs' | 'redisTimeoutMs'>;
  readonly links: Pick<NodeLinks, 'nextJob'>;
  readonly log: Logger;
  /** A job past its stall limit was failed at take time (the node's `job.failed_stalled` line). */
  readonly failedStalled: (jobId: string | undefined, reason: string) => void;
  /** Monotonic clock, ms (the chart's). */
  readonly now: () => number;
}

/** The jobs this node holds (one at a time in practice), by job id. */
export class HeldJobs {
  private readonly held = new Map<string, Held>();

  constructor(private readonly d: HeldJobsDeps) {}

  get(jobId: string): Held | undefined {
    return this.held.get(jobId);
  }

  /** The hold is over: forget the job object. */
  forget(jobId: string): void {
    this.held.delete(jobId);
  }

  /** Count a refusal by the gate; true for the hold's first (the one that is logged). */
  withhold(jobId: string): boolean {
    const h = this.held.get(jobId);
    return h !== undefined && h.withheld++ === 0;
  }

  /** Take request `n`: the next waiting job, with a ticket minted for its user. */
  async take(n: number): Promise<TakeOutput> {
    const { settings: s, log } = this.d;
    const token = `${s.nodeId}:${n}`;
    const issuedAt = this.d.now();
    const issuedWall = Date.now();
    let job: RideJob | undefined;
    try {
      job = await withTimeout(this.d.links.nextJob(token), s.redisTimeoutMs, 'take a job');
    } catch (err) {
      // If the take went through after all, the job's lock lapses and the stall check requeues it.
      log.warn({ err: messageOf(err) }, 'fleet: taking a job failed');
      return { kind: 'none' };
    }
    if (!job) return { kind: 'none' };
    if (job.deferredFailure) {
      // BullMQ fails a job past its stall limit when a worker next takes it.
      this.d.failedStalled(job.id, job.deferredFailure);
      await withTimeout(job.moveToFailed(new Error(job.deferredFailure), token, false), s.redisTimeoutMs, 'fail the job').catch((err: unknown) =>
        log.warn({ err: messageOf(err) }, 'fleet: failing a stalled-out job failed'),
      );
      return { kind: 'retry' };
    }
    const jobId = job.id!;
    const attempt = job.attemptsStarted;
    const ticket = mintTicket({ jobId, node: s.nodeId, attempt, exp: Date.now() + s.noShowMs }, s.secret);
    this.held.set(jobId, { job, token, withheld: 0, issuedAt: issuedWall, waitedMs: Date.now() - (job.data.requestedAt ?? Date.now()) });
    return { kind: 'job', hold: { jobId, attempt, ticket, take: n }, issuedAt };
  }

  /** Tell the gateway where to send the user (the job's progress); true once it is published. */
  async publish(hold: NodeHold, url: string): Promise<boolean> {
    const { settings: s, log } = this.d;
    const h = this.held.get(hold.jobId);
    if (!h) return false;
    const progress: AssignmentProgress = { type: 'assigned', url, ticket: hold.ticket, node: s.nodeId, attempt: hold.attempt };
    try {
      await withTimeout(h.job.updateProgress(progress), s.redisTimeoutMs, 'publish the assignment');
      return true;
    } catch (err) {
      // Nobody will come: no_show releases the node (or the fence, if Redis is gone).
      log.warn({ jobId: hold.jobId, err: messageOf(err) }, 'fleet: publishing the assignment failed');
      return false;
    }
  }

  /** Tell the gateway the ticket holder began (for the operator; best effort). */
  riding(hold: NodeHold, sessionId: string): void {
    const progress: RidingProgress = { type: 'riding', node: this.d.settings.nodeId, attempt: hold.attempt, sessionId };
    this.held
      .get(hold.jobId)
      ?.job.updateProgress(progress)
      .catch((err: unknown) => this.d.log.debug({ jobId: hold.jobId, err: messageOf(err) }, "fleet: publishing the ride's start failed"));
  }

  /** Extend the lock; confirmed only if Redis says the lock is still this node's. */
  async renew(hold: NodeHold): Promise<RenewOutput> {
    const { settings: s, log } = this.d;
    const h = this.held.get(hold.jobId);
    const issuedAt = this.d.now();
    if (!h) return { confirmed: false, issuedAt };
    try {
      const r = await withTimeout(h.job.extendLock(h.token, s.leaseMs), s.leaseMs, 'renew the lease');
      return { confirmed: r === 1, issuedAt };
    } catch (err) {
      // Redis is slow or away: the chart's lease delays decide when that becomes fatal.
      log.warn({ jobId: hold.jobId, err: messageOf(err) }, 'fleet: lease renewal failed');
      throw err;
    }
  }

  /** Complete the job with the ride's result; Redis refuses it if the lock is no longer ours. */
  async complete(hold: NodeHold, end: NodeRideResult): Promise<CompleteOutput> {
    const { settings: s } = this.d;
    const h = this.held.get(hold.jobId);
    if (!h) return { completed: false, why: 'the job is not held' };
    const result: RideResult = { node: s.nodeId, attempt: hold.attempt, ...end };
    try {
      await withTimeout(h.job.moveToCompleted(result, h.token, false), s.redisTimeoutMs, 'complete the job');
      return { completed: true };
    } catch (err) {
      return { completed: false, why: messageOf(err) };
    }
  }
}

/**
 * A fleet node: one framehost runtime that takes ride requests from the BullMQ queue, one at a
 * time, and serves each to the client holding its ticket.
 *
 * The job is the ride. The node takes it only while its chart is idle (manual fetching, so the
 * node, not BullMQ's loop, decides when), arms admission for exactly one ticket, and only then
 * publishes the assignment (the job's progress: announcing first lost users to a race,
 * MEASURED.md). The job stays active for the whole session and is completed when the session
 * ends, with the reason in its return value; a user who never arrives releases the node
 * (`no_show`).
 *
 * The job lock is the node's lease on its user. BullMQ is at-least-once, and a lost lock does
 * not stop anything by itself: a node that froze or lost Redis would go on serving a user whom
 * the stalled-job check has already handed to another node. So the node renews the lock itself
 * and fences itself: when it cannot prove it still holds the lease (the last renewal that Redis
 * confirmed was issued more than `leaseMs - fenceMarginMs` ago, or a renewal was refused), it
 * ends the session at once (reason `fenced`) and admits nobody. Its completion is then refused
 * by Redis (the lock is gone or someone else's), which is the last line of defence.
 *
 * Drain (SIGTERM): take no new job, let the running session finish, or stop it at the drain
 * deadline with reason `shutdown`.
 */
import { randomUUID } from 'node:crypto';
import { QueueEvents, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { fail, type Result } from '../errors.ts';
import type { Runtime } from '../runtime.ts';
import { messageOf, sleep, Wakeup, withTimeout } from './deadline.ts';
import type { AssignmentProgress, RideEndReason, RideJobData, RideResult } from './events.ts';
import { connectionOf, DEFAULT_NODE, registryKey, type NodeSettings } from './options.ts';
import { NodeRegistry, openRedis, type NodeState } from './registry.ts';
import { mintTicket, verifyTicket } from './ticket.ts';
import { leaseHeld as proofHolds } from '../machines/lease.ts';

type RideJob = Job<RideJobData, RideResult, string>;

/** The job this node holds right now. */
interface Hold {
  readonly job: RideJob;
  readonly jobId: string;
  /** The lock token: only this node knows it, so only this node can renew or complete. */
  readonly token: string;
  readonly attempt: number;
  readonly ticket: string;
  /** performance.now() when the last call that Redis confirmed as holding the lock was issued. */
  proofAt: number;
  sessionId: string | null;
  frames: number;
  fenced: boolean;
  /** Set once: the job is being completed (or the completion was refused). */
  ending: boolean;
  /** Frames, messages and requests the gate refused for this hold (logged once, counted). */
  withheld: number;
  readonly timers: NodeJS.Timeout[];
  readonly over: Promise<void>;
  release(): void;
}

/** Log lines tests and operators key on: `fleet` names the event. */
export type NodeLogEvent =
  | 'ready'
  | 'job.taken'
  | 'job.assigned'
  | 'job.failed_stalled'
  | 'session.began'
  | 'job.completed'
  | 'completion.rejected'
  | 'fenced'
  | 'lease.withheld'
  | 'no_show'
  | 'drain.began'
  | 'drain.deadline'
  | 'drained';

export interface FleetNode {
  /** Admission for `session:start` (TransportOptions.admit): only the armed ticket passes. */
  readonly admit: (request: { readonly ticket?: string }) => Result;
  /**
   * The lease on the frame path (TransportOptions.gate), asked synchronously for every frame and
   * model message that leaves and every command and input frame that enters: refused
   * (`lease_lost`) once this node cannot prove it still holds its user.
   */
  readonly gate: () => Result;
  /** Begin taking jobs once the model is ready; `publicUrl` is what clients are sent to. */
  start(publicUrl: string): Promise<void>;
  /** Take no new job; let the running session finish (or stop it at the drain deadline); then close. */
  drain(): Promise<void>;
  /** Close the queue connections at once (tests, errors); a held job is left to the stall check. */
  close(): Promise<void>;
  state(): NodeState;
  readonly nodeId: string;
}

export type NodeOptions = Partial<NodeSettings> & Pick<NodeSettings, 'redisUrl' | 'secret'>;

export function createFleetNode(runtime: Runtime, options: NodeOptions, parentLog: Logger): FleetNode {
  const nodeId = options.nodeId ?? `node-${randomUUID().slice(0, 8)}`;
  const s: Omit<NodeSettings, 'publicUrl'> = { ...DEFAULT_NODE, ...options, nodeId };
  const log = parentLog.child({ component: 'fleet', node: nodeId });
  const say = (event: NodeLogEvent, fields: Record<string, unknown> = {}, level: 'info' | 'warn' = 'info'): void => {
    log[level]({ fleet: event, ...fields }, `fleet: ${event}`);
  };

  let publicUrl = options.publicUrl ?? '';
  let worker: Worker<RideJobData, RideResult, string> | null = null;
  let events: QueueEvents | null = null;
  let redis: Redis | null = null;
  let registry: NodeRegistry | null = null;
  let hold: Hold | null = null;
  /** The ticket admission accepts; null when nobody is expected. */
  let armed: { ticket: string; hold: Hold } | null = null;
  /** Set by `admit` for the `session:start` being handled right now (the runtime starts it synchronously). */
  let admitting: Hold | null = null;
  /** Tickets already used, newest last; bounded: a ticket expires within `noShowMs` anyway. */
  const used: string[] = [];
  let draining = false;
  let closed = false;
  let sessions = 0;
  let takes = 0;
  const wake = new Wakeup();
  let loop: Promise<void> = Promise.resolve();
  let heartbeatTimer: NodeJS.Timeout | null = null;
  let drainTimer: NodeJS.Timeout | null = null;
  let drained: Promise<void> | null = null;

  const leaseHeld = (h: Hold): boolean => proofHolds(h, performance.now(), s);

  const gate = (): Result => {
    const h = hold;
    if (h && leaseHeld(h)) return { ok: true };
    if (!h) return fail('lease_lost', 'this node holds no ride');
    if (h.withheld++ === 0) say('lease.withheld', { jobId: h.jobId, attempt: h.attempt, sinceProofMs: Math.round(performance.now() - h.proofAt), sessionId: h.sessionId }, 'warn');
    // Fence after the caller's turn: the gate is asked from inside runtime events and socket handlers.
    if (!h.fenced && !h.ending) queueMicrotask(() => fence(h, 'lease not proven on the frame path'));
    return fail('lease_lost');
  };

  function state(): NodeState {
    if (draining) return 'draining';
    if (hold) return hold.sessionId ? 'busy' : 'assigned';
    return runtime.phase() === 'idle' ? 'free' : 'busy';
  }

  function heartbeat(): void {
    if (!registry || closed || !publicUrl) return;
    registry.write({ id: nodeId, url: publicUrl, state: state(), at: Date.now(), sessions }).catch((err: unknown) => log.debug({ err: messageOf(err) }, 'fleet: heartbeat failed'));
  }

  // The session that the armed ticket admitted begins synchronously inside runtime.start().
  runtime.on('session.began', (session) => {
    const h = admitting;
    if (!h || hold !== h) return;
    admitting = null;
    h.sessionId = session.id;
    armed = null;
    used.push(h.ticket);
    if (used.length > 256) used.shift();
    sessions++;
    say('session.began', { jobId: h.jobId, attempt: h.attempt, sessionId: session.id });
    heartbeat();
  });
  runtime.on('session.finished', (e) => {
    const h = hold;
    if (!h || h.sessionId !== e.sessionId) return;
    h.frames = e.frames;
    void finish(h, h.fenced ? 'fenced' : e.reason, e.error);
  });
  runtime.on('phase', () => {
    wake.fire();
    heartbeat();
  });

  const admit = (request: { readonly ticket?: string }): Result => {
    const ticket = request.ticket;
    if (typeof ticket === 'string' && used.includes(ticket)) return fail('ticket_used');
    if (ticket === undefined) return fail('ticket_invalid', 'this node admits only ticket holders sent by the fleet gateway');
    const v = verifyTicket(ticket, s.secret);
    if (!v.ok) return v;
    if (v.claims.node !== nodeId) return fail('ticket_invalid', 'the ticket is for another node');
    const a = armed;
    if (!a || a.ticket !== ticket) return fail('ticket_invalid', 'this node is not waiting for this ticket');
    if (!leaseHeld(a.hold)) {
      fence(a.hold, 'lease not proven at admission');
      return fail('ticket_invalid', 'this node no longer holds the ride');
    }
    admitting = a.hold;
    queueMicrotask(() => {
      if (admitting === a.hold) admitting = null; // the start was refused after admission (not_ready…): the ticket stays armed
    });
    return { ok: true };
  };

  /** End the session now: this node cannot prove it still holds the user. */
  function fence(h: Hold, why: string): void {
    if (h.fenced || h.ending) return;
    h.fenced = true;
    if (armed?.hold === h) armed = null;
    say('fenced', { jobId: h.jobId, attempt: h.attempt, why, sinceProofMs: Math.round(performance.now() - h.proofAt), sessionId: h.sessionId }, 'warn');
    if (h.sessionId && runtime.status().session?.id === h.sessionId) {
      const r = runtime.stop({ reason: 'fenced' });
      if (!r.ok) log.warn({ code: r.error.code }, 'fleet: stopping the fenced session was refused (it is ending already)');
      // session.finished completes the hold.
    } else {
      void finish(h, 'fenced');
    }
  }

  async function renew(h: Hold): Promise<void> {
    if (h.fenced || h.ending) return;
    const issuedAt = performance.now();
    try {
      const r = await withTimeout(h.job.extendLock(h.token, s.leaseMs), s.leaseMs, 'renew the lease');
      if (h.fenced || h.ending) return;
      if (r === 1) h.proofAt = Math.max(h.proofAt, issuedAt);
      else fence(h, 'renewal refused: the lock is gone or someone else holds it');
    } catch (err) {
      // Redis is slow or away: the fence check decides when that becomes fatal.
      log.warn({ jobId: h.jobId, err: messageOf(err) }, 'fleet: lease renewal failed');
    }
  }

  /** Complete the job with how the ride ended. Redis refuses it if the lock is no longer ours. */
  async function finish(h: Hold, reason: RideEndReason, error?: RideResult['error']): Promise<void> {
    if (h.ending) return;
    h.ending = true;
    if (armed?.hold === h) armed = null;
    for (const t of h.timers) clearTimeout(t);
    const result: RideResult = { reason, node: nodeId, attempt: h.attempt, ...(h.sessionId ? { sessionId: h.sessionId, frames: h.frames } : {}), ...(error ? { error } : {}) };
    try {
      await withTimeout(h.job.moveToCompleted(result, h.token, false), s.redisTimeoutMs, 'complete the job');
      say('job.completed', { jobId: h.jobId, attempt: h.attempt, reason, fenced: h.fenced, withheld: h.withheld });
    } catch (err) {
      say('completion.rejected', { jobId: h.jobId, attempt: h.attempt, reason, fenced: h.fenced, withheld: h.withheld, err: messageOf(err) }, 'warn');
    } finally {
      if (hold === h) hold = null;
      h.release();
      heartbeat();
      wake.fire();
    }
  }

  async function serve(job: RideJob, token: string, take: number, takenAt: number, issuedWall: number): Promise<void> {
    const jobId = job.id!;
    const attempt = job.attemptsStarted;
    const ticket = mintTicket({ jobId, node: nodeId, attempt, exp: Date.now() + s.noShowMs }, s.secret);
    let release!: () => void;
    const over = new Promise<void>((r) => (release = r));
    const h: Hold = { job, jobId, token, attempt, ticket, proofAt: takenAt, sessionId: null, frames: 0, fenced: false, ending: false, withheld: 0, timers: [], over, release };
    hold = h;
    // `take` numbers this node's take requests, `issuedAt` says when it was sent: a drain is judged
    // by them (drain.began logs how many takes had been issued), not by when the answer came.
    say('job.taken', { jobId, attempt, take, issuedAt: issuedWall, waitedMs: Date.now() - (job.data.requestedAt ?? Date.now()) });

    const renewal = setInterval(() => void renew(h), s.renewEveryMs);
    // Checked often and on wake-up from a freeze: every due timer fires before new I/O is read.
    const fenceCheck = setInterval(() => {
      if (!h.fenced && !h.ending && !leaseHeld(h)) fence(h, 'lease not renewed in time');
    }, Math.max(20, Math.min(100, Math.floor(s.fenceMarginMs / 2))));
    const noShow = setTimeout(() => {
      if (!h.sessionId && !h.fenced && !h.ending) {
        say('no_show', { jobId, attempt });
        void finish(h, 'no_show');
      }
    }, s.noShowMs);
    h.timers.push(renewal, fenceCheck, noShow);

    // Arm first, then announce: the client may connect the moment the gateway hears of it.
    armed = { ticket, hold: h };
    heartbeat();
    if (!leaseHeld(h)) fence(h, 'lease not proven before publishing');
    else {
      const progress: AssignmentProgress = { type: 'assigned', url: publicUrl, ticket, node: nodeId, attempt };
      try {
        await withTimeout(job.updateProgress(progress), s.redisTimeoutMs, 'publish the assignment');
        say('job.assigned', { jobId, attempt });
      } catch (err) {
        // Nobody will come: no_show releases the node (or the fence, if Redis is gone).
        log.warn({ jobId, err: messageOf(err) }, 'fleet: publishing the assignment failed');
      }
    }
    await over;
    // Timers of a hold end with it (finish clears them; this covers a close() mid-hold).
    for (const t of h.timers) clearTimeout(t);
  }

  async function takeLoop(): Promise<void> {
    while (!draining && !closed) {
      const mark = wake.mark; // an event from here on ends the next sleep at once
      if (runtime.phase() !== 'idle') {
        await wake.wait(s.pollMs, mark);
        continue;
      }
      const w = worker!;
      const take = ++takes;
      const token = `${nodeId}:${take}`;
      const takenAt = performance.now();
      const issuedWall = Date.now();
      let job: RideJob | undefined;
      try {
        // Non-blocking: the decision to take is made here, synchronously after the drain check,
        // so no job is taken once a drain has begun.
        job = await withTimeout(w.getNextJob(token, { block: false }), s.redisTimeoutMs, 'take a job');
      } catch (err) {
        // If the take went through after all, the job's lock lapses and the stall check requeues it.
        log.warn({ err: messageOf(err) }, 'fleet: taking a job failed');
        await sleep(Math.min(s.pollMs, 1000));
        continue;
      }
      if (!job) {
        await wake.wait(s.pollMs, mark);
        continue;
      }
      if (job.deferredFailure) {
        // BullMQ fails a job past its stall limit when a worker next takes it.
        say('job.failed_stalled', { jobId: job.id, reason: job.deferredFailure }, 'warn');
        await withTimeout(job.moveToFailed(new Error(job.deferredFailure), token, false), s.redisTimeoutMs, 'fail the job').catch((err: unknown) =>
          log.warn({ err: messageOf(err) }, 'fleet: failing a stalled-out job failed'),
        );
        continue;
      }
      await serve(job, token, take, takenAt, issuedWall);
    }
  }

  return {
    admit,
    gate,
    nodeId,
    state,
    async start(url) {
      publicUrl = options.publicUrl ?? url;
      if (!options.publicUrl && /\/\/(0\.0\.0\.0|\[::\])[:/]/.test(url)) {
        log.warn({ url }, 'fleet: listening on all interfaces without --public-url: clients will be sent to an address they cannot open');
      }
      await runtime.ready();
      const connection = connectionOf(s.redisUrl);
      worker = new Worker<RideJobData, RideResult, string>(s.queue, null, {
        connection,
        prefix: s.prefix,
        autorun: false, // manual fetching: this node decides when it takes a job
        concurrency: 1,
        name: nodeId,
        lockDuration: s.leaseMs,
        stalledInterval: s.stalledIntervalMs,
        maxStalledCount: s.maxStalledCount,
        skipLockRenewal: true, // renewed by this node itself, which is what lets it fence
      });
      worker.on('error', (err) => log.warn({ err: messageOf(err) }, 'fleet: worker error'));
      // Only jobs run through BullMQ's own processor are renewed by its lock manager; the event is
      // here in case that ever includes ours.
      worker.on('lockRenewalFailed', (ids) => {
        if (hold && ids.includes(hold.jobId)) fence(hold, 'lockRenewalFailed');
      });
      events = new QueueEvents(s.queue, { connection, prefix: s.prefix });
      events.on('error', (err) => log.warn({ err: messageOf(err) }, 'fleet: queue events error'));
      // A new or requeued job: wake a free node at once instead of at its next poll.
      events.on('waiting', () => wake.fire());
      redis = openRedis(s.redisUrl, { maxRetriesPerRequest: 2, connectTimeout: s.redisTimeoutMs });
      redis.on('error', (err) => log.debug({ err: messageOf(err) }, 'fleet: registry connection error'));
      registry = new NodeRegistry(redis, registryKey(s));
      await withTimeout(Promise.all([worker.waitUntilReady(), events.waitUntilReady()]), 30_000, 'connect to Redis');
      // Nodes run BullMQ's stalled-job check: a dead node's job goes back to the wait list.
      await worker.startStalledCheckTimer();
      heartbeatTimer = setInterval(heartbeat, s.heartbeatMs);
      heartbeat();
      say('ready', { url: publicUrl, leaseMs: s.leaseMs, stalledIntervalMs: s.stalledIntervalMs });
      loop = takeLoop().catch((err: unknown) => log.error({ err }, 'fleet: the take loop failed'));
    },
    drain() {
      if (drained) return drained;
      draining = true;
      say('drain.began', { takesIssued: takes, holding: hold?.jobId ?? null, sessionId: hold?.sessionId ?? null });
      heartbeat();
      wake.fire();
      drainTimer = setTimeout(() => {
        const h = hold;
        if (!h) return;
        say('drain.deadline', { jobId: h.jobId, sessionId: h.sessionId });
        if (h.sessionId) runtime.stop({ reason: 'shutdown' });
        else void finish(h, 'shutdown');
      }, s.drainDeadlineMs);
      drained = (async () => {
        await loop;
        if (drainTimer) clearTimeout(drainTimer);
        say('drained', { sessions });
        await close();
      })();
      return drained;
    },
    close,
  };

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    wake.fire();
    if (heartbeatTimer) clearInterval(heartbeatTimer);
    if (drainTimer) clearTimeout(drainTimer);
    if (hold) {
      for (const t of hold.timers) clearTimeout(t);
      hold.release(); // the loop stops; the job's lock lapses and the stall check requeues it
    }
    await registry?.remove(nodeId).catch(() => undefined);
    await Promise.allSettled([worker?.close(true), events?.close()]);
    redis?.disconnect();
  }
}

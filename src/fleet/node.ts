/**
 * A fleet node: one framehost runtime that takes ride requests from the BullMQ queue, one at a
 * time, and serves each to the client holding its ticket.
 *
 * The node's lifecycle is a chart (src/machines/node.machine.ts: take, reserve, serve, complete;
 * the lease held → late → fenced; the drain); this file is its edge: it provides the chart's
 * actors (BullMQ's take, publish, renew, complete; the registry heartbeat), carries out what the
 * chart emits (log lines, stopping the session), and feeds it the runtime's events.
 *
 * The job is the ride. The node takes one only while the runtime is idle (manual fetching, so
 * the node, not BullMQ's loop, decides when), arms admission for exactly one ticket, and only
 * then publishes the assignment (the job's progress: announcing first lost users to a race,
 * MEASURED.md). The job stays active for the whole session and is completed when it ends, with
 * the reason as its return value; a user who never arrives releases the node (`no_show`).
 *
 * The job lock is the node's lease on its user. BullMQ is at-least-once and a lost lock stops
 * nothing by itself, so the node renews the lock itself and fences itself (the chart's lease
 * region), and the same rule guards the frame path synchronously (`gate`): once the proof is too
 * old, no frame or message leaves and no command enters, whatever the timers are doing. Redis
 * then refuses the fenced node's completion, the last line of defence.
 */
import { randomUUID } from 'node:crypto';
import { QueueEvents, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createActor, fromCallback, fromPromise, type Actor, type InspectionEvent } from 'xstate';
import { fail, type Result } from '../errors.ts';
import type { Runtime } from '../runtime.ts';
import { messageOf, withTimeout } from './deadline.ts';
import type { AssignmentProgress, RideJobData, RideResult, RidingProgress } from './events.ts';
import { connectionOf, DEFAULT_NODE, registryKey, type NodeSettings } from './options.ts';
import { NodeRegistry, openRedis, type NodeState } from './registry.ts';
import { activeStateIds, type LiveChart } from '../machines/chart-graph.ts';
import { runtimeMachine } from '../machines/runtime.machine.ts';
import { mintTicket, verifyTicket } from './ticket.ts';
import { mayAct, nodeMachine, registryStateOf, type CompleteOutput, type NodeHold, type NodeLine, type NodeMachine, type NodeRideResult, type NodeSnapshot, type TakeOutput } from '../machines/node.machine.ts';

type RideJob = Job<RideJobData, RideResult, string>;

/** Log lines tests and operators key on: `fleet` names the event. */
export type NodeLogEvent = NodeLine | 'job.failed_stalled' | 'lease.withheld';

export interface FleetNode {
  /** Admission for `session:start` (TransportOptions.admit): only the armed ticket passes. */
  readonly admit: (request: { readonly ticket?: string; readonly sub?: string }) => Result;
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
  /** The node chart's current snapshot (for /health, the inspector and tests). */
  snapshot(): NodeSnapshot;
  /** The node chart, running (for the node server's `/chart`). */
  readonly chart: LiveChart;
  readonly nodeId: string;
}

export type NodeOptions = Partial<NodeSettings> &
  Pick<NodeSettings, 'redisUrl' | 'secret'> & {
    /** XState inspection of the node's chart (`--inspect`, as for the runtime's). */
    readonly inspect?: (event: InspectionEvent) => void;
  };

/** What the edge keeps of a held job: the BullMQ object and the lock token only this node knows. */
interface Held {
  readonly job: RideJob;
  readonly token: string;
  /** Frames, messages and requests the gate refused for this hold. */
  withheld: number;
  /** For the `job.taken` line: when the take was sent (ms since the epoch), and how long the ride had waited. */
  readonly issuedAt: number;
  readonly waitedMs: number;
}

export function createFleetNode(runtime: Runtime, options: NodeOptions, parentLog: Logger): FleetNode {
  const nodeId = options.nodeId ?? `node-${randomUUID().slice(0, 8)}`;
  const { inspect, ...settings } = options;
  const s: Omit<NodeSettings, 'publicUrl'> = { ...DEFAULT_NODE, ...settings, nodeId };
  const log = parentLog.child({ component: 'fleet', node: nodeId });
  const say = (event: NodeLogEvent, fields: Record<string, unknown> = {}, level: 'info' | 'warn' = 'info'): void => {
    log[level]({ fleet: event, ...fields }, `fleet: ${event}`);
  };
  const now = (): number => performance.now();

  let publicUrl = options.publicUrl ?? '';
  let worker: Worker<RideJobData, RideResult, string> | null = null;
  let events: QueueEvents | null = null;
  let redis: Redis | null = null;
  let registry: NodeRegistry | null = null;
  const held = new Map<string, Held>();
  /** Set by `admit` for the `session:start` being handled right now (the runtime starts it synchronously). */
  let admitting: string | null = null;
  /** Tickets already used, newest last; bounded: a ticket expires within `noShowMs` anyway. */
  const used: string[] = [];
  let closed = false;
  let startedUrl: Promise<void> | null = null;

  function heartbeat(): void {
    if (!registry || closed || !publicUrl) return;
    const snap = actor.getSnapshot();
    const c = snap.context;
    registry
      .write({
        id: nodeId,
        url: publicUrl,
        state: registryStateOf(snap),
        at: Date.now(),
        sessions: c.sessions,
        ride: c.hold?.jobId ?? null,
        leaseAgeMs: c.hold ? Math.round(now() - c.proof.proofAt) : null,
        fences: c.fences,
        refusedCompletions: c.refusedCompletions,
        chart: activeStateIds('node', snap.value),
        phase: runtime.phase(),
        // A dozen short ids: cheap enough for every heartbeat, and the gateway's /charts then
        // lights the watchdog and attended/orphaned too, which a phase cannot say.
        runtimeChart: activeStateIds(runtimeMachine.id, runtime.actor.getSnapshot().value),
      })
      .catch((err: unknown) => log.debug({ err: messageOf(err) }, 'fleet: heartbeat failed'));
  }

  const machine = nodeMachine.provide({
    actors: {
      connect: fromPromise(async () => {
        await runtime.ready();
        await connect();
      }),
      take: fromPromise<TakeOutput, { take: number }>(async ({ input }) => take(input.take)),
      publish: fromPromise<void, NodeHold>(async ({ input }) => publish(input)),
      renew: fromPromise(async ({ input }: { input: NodeHold }) => {
        const h = held.get(input.jobId);
        const issuedAt = now();
        if (!h) return { confirmed: false, issuedAt };
        try {
          const r = await withTimeout(h.job.extendLock(h.token, s.leaseMs), s.leaseMs, 'renew the lease');
          return { confirmed: r === 1, issuedAt };
        } catch (err) {
          // Redis is slow or away: the chart's lease delays decide when that becomes fatal.
          log.warn({ jobId: input.jobId, err: messageOf(err) }, 'fleet: lease renewal failed');
          throw err;
        }
      }),
      complete: fromPromise<CompleteOutput, { hold: NodeHold; result: NodeRideResult; fenced: boolean }>(async ({ input }) => {
        const h = held.get(input.hold.jobId);
        if (!h) return { completed: false, why: 'the job is not held' };
        const result: RideResult = { node: nodeId, attempt: input.hold.attempt, ...input.result };
        try {
          await withTimeout(h.job.moveToCompleted(result, h.token, false), s.redisTimeoutMs, 'complete the job');
          return { completed: true };
        } catch (err) {
          return { completed: false, why: messageOf(err) };
        }
      }),
      heartbeat: fromCallback(() => {
        heartbeat(); // at once: every state change the gateway should see restarts this
        const timer = setInterval(heartbeat, s.heartbeatMs);
        return () => clearInterval(timer);
      }),
    },
  });

  const actor: Actor<NodeMachine> = createActor(machine, {
    input: { nodeId, now, times: { leaseMs: s.leaseMs, fenceMarginMs: s.fenceMarginMs, renewEveryMs: s.renewEveryMs, noShowMs: s.noShowMs, drainDeadlineMs: s.drainDeadlineMs, pollMs: s.pollMs } },
    ...(inspect ? { inspect } : {}),
  });
  actor.on('line', (e) => {
    const jobId = typeof e.fields.jobId === 'string' ? e.fields.jobId : null;
    const h = jobId ? held.get(jobId) : undefined;
    const ended = e.line === 'job.completed' || e.line === 'completion.rejected';
    const extra =
      e.line === 'ready' ? { url: publicUrl, stalledIntervalMs: s.stalledIntervalMs } :
      // `sub`: the user the gateway admitted by access token, so the node's log says whom it serves.
      e.line === 'job.taken' && h ? { issuedAt: h.issuedAt, waitedMs: h.waitedMs, ...(h.job.data.sub ? { sub: h.job.data.sub } : {}) } :
      ended && h ? { withheld: h.withheld } : {};
    say(e.line, { ...e.fields, ...extra }, e.level);
    if (ended && jobId) held.delete(jobId); // the hold is over: the edge forgets the job object
  });
  actor.on('ride.riding', ({ hold, sessionId }) => {
    const h = held.get(hold.jobId);
    const progress: RidingProgress = { type: 'riding', node: nodeId, attempt: hold.attempt, sessionId };
    h?.job.updateProgress(progress).catch((err: unknown) => log.debug({ jobId: hold.jobId, err: messageOf(err) }, 'fleet: publishing the ride\'s start failed'));
  });
  actor.on('session.stop', (e) => {
    const r = runtime.stop({ reason: e.reason });
    if (!r.ok) log.warn({ code: r.error.code, reason: e.reason }, 'fleet: stopping the session was refused (it is ending already)');
  });
  // Every change of the chart's active states is written at once (the gateway's page draws them).
  let lastStates = '';
  actor.subscribe({
    next: (snap) => {
      const states = activeStateIds('node', snap.value).join(' ');
      if (states !== lastStates) {
        lastStates = states;
        heartbeat();
      }
    },
    error: (err) => log.error({ err }, 'fleet: the node chart failed'),
  });

  // The session that the armed ticket admitted begins synchronously inside runtime.start().
  runtime.on('session.began', (session) => {
    const jobId = admitting;
    if (!jobId) return;
    admitting = null;
    const hold = actor.getSnapshot().context.hold;
    if (hold?.jobId !== jobId) return;
    used.push(hold.ticket);
    if (used.length > 256) used.shift();
    actor.send({ type: 'session.began', sessionId: session.id });
  });
  runtime.on('session.finished', (e) => actor.send({ type: 'session.finished', sessionId: e.sessionId, reason: e.reason, frames: e.frames, ...(e.error ? { error: e.error } : {}) }));
  runtime.on('phase', ({ phase }) => actor.send({ type: 'runtime.phase', idle: phase === 'idle' }));
  // The gateway's charts page lights the runtime chart too: every change of its active states
  // (a phase, the watchdog, attended/orphaned) is written at once, as the node chart's are.
  let lastRuntimeStates = '';
  runtime.actor.subscribe({
    next: (snap) => {
      const states = activeStateIds(runtimeMachine.id, snap.value).join(' ');
      if (states !== lastRuntimeStates) {
        lastRuntimeStates = states;
        heartbeat();
      }
    },
    error: () => undefined, // the runtime logs its own chart's errors
  });

  const admit = (request: { readonly ticket?: string; readonly sub?: string }): Result => {
    const ticket = request.ticket;
    if (typeof ticket === 'string' && used.includes(ticket)) return fail('ticket_used');
    if (ticket === undefined) return fail('ticket_invalid', 'this node admits only ticket holders sent by the fleet gateway');
    const v = verifyTicket(ticket, s.secret);
    if (!v.ok) return v;
    if (v.claims.node !== nodeId) return fail('ticket_invalid', 'the ticket is for another node');
    const snap = actor.getSnapshot();
    const hold = snap.context.hold;
    if (!snap.matches({ ride: 'reserved' }) || hold?.ticket !== ticket) return fail('ticket_invalid', 'this node is not waiting for this ticket');
    // The ride belongs to the user the gateway admitted: a ticket passed to another user's token is refused.
    const rideSub = held.get(hold.jobId)?.job.data.sub;
    if (rideSub !== undefined && request.sub !== undefined && request.sub !== rideSub) return fail('forbidden', 'this ride belongs to another user');
    if (!mayAct(snap.context, now())) {
      actor.send({ type: 'lease.check', why: 'lease not proven at admission' });
      return fail('ticket_invalid', 'this node no longer holds the ride');
    }
    admitting = hold.jobId;
    queueMicrotask(() => {
      if (admitting === hold.jobId) admitting = null; // the start was refused after admission (not_ready…): the ticket stays armed
    });
    return { ok: true };
  };

  const gate = (): Result => {
    const context = actor.getSnapshot().context;
    const t = now();
    if (mayAct(context, t)) return { ok: true };
    const hold = context.hold;
    if (!hold) return fail('lease_lost', 'this node holds no ride');
    const h = held.get(hold.jobId);
    if (h && h.withheld++ === 0) say('lease.withheld', { jobId: hold.jobId, attempt: hold.attempt, sinceProofMs: Math.round(t - context.proof.proofAt), sessionId: context.sessionId }, 'warn');
    // Fence after the caller's turn: the gate is asked from inside runtime events and socket handlers.
    if (!context.proof.fenced) queueMicrotask(() => actor.send({ type: 'lease.check', why: 'lease not proven on the frame path' }));
    return fail('lease_lost');
  };

  async function take(n: number): Promise<TakeOutput> {
    const w = worker!;
    const token = `${nodeId}:${n}`;
    const issuedAt = now();
    const issuedWall = Date.now();
    let job: RideJob | undefined;
    try {
      // Non-blocking: the chart decided to take, synchronously after its drain check.
      job = await withTimeout(w.getNextJob(token, { block: false }), s.redisTimeoutMs, 'take a job');
    } catch (err) {
      // If the take went through after all, the job's lock lapses and the stall check requeues it.
      log.warn({ err: messageOf(err) }, 'fleet: taking a job failed');
      return { kind: 'none' };
    }
    if (!job) return { kind: 'none' };
    if (job.deferredFailure) {
      // BullMQ fails a job past its stall limit when a worker next takes it.
      say('job.failed_stalled', { jobId: job.id, reason: job.deferredFailure }, 'warn');
      await withTimeout(job.moveToFailed(new Error(job.deferredFailure), token, false), s.redisTimeoutMs, 'fail the job').catch((err: unknown) =>
        log.warn({ err: messageOf(err) }, 'fleet: failing a stalled-out job failed'),
      );
      return { kind: 'retry' };
    }
    const jobId = job.id!;
    const attempt = job.attemptsStarted;
    const ticket = mintTicket({ jobId, node: nodeId, attempt, exp: Date.now() + s.noShowMs }, s.secret);
    held.set(jobId, { job, token, withheld: 0, issuedAt: issuedWall, waitedMs: Date.now() - (job.data.requestedAt ?? Date.now()) });
    return { kind: 'job', hold: { jobId, attempt, ticket, take: n }, issuedAt };
  }

  /** Tell the gateway (the job's progress); the ticket is armed already (the chart is `reserved`). */
  async function publish(hold: NodeHold): Promise<void> {
    const h = held.get(hold.jobId);
    if (!h) return;
    if (!mayAct(actor.getSnapshot().context, now())) {
      actor.send({ type: 'lease.check', why: 'lease not proven before publishing' });
      return;
    }
    const progress: AssignmentProgress = { type: 'assigned', url: publicUrl, ticket: hold.ticket, node: nodeId, attempt: hold.attempt };
    try {
      await withTimeout(h.job.updateProgress(progress), s.redisTimeoutMs, 'publish the assignment');
      say('job.assigned', { jobId: hold.jobId, attempt: hold.attempt });
    } catch (err) {
      // Nobody will come: no_show releases the node (or the fence, if Redis is gone).
      log.warn({ jobId: hold.jobId, err: messageOf(err) }, 'fleet: publishing the assignment failed');
    }
  }

  async function connect(): Promise<void> {
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
    events = new QueueEvents(s.queue, { connection, prefix: s.prefix });
    events.on('error', (err) => log.warn({ err: messageOf(err) }, 'fleet: queue events error'));
    // A new or requeued job: wake a free node at once instead of at its next poll.
    events.on('waiting', () => actor.send({ type: 'node.wake' }));
    redis = openRedis(s.redisUrl, { maxRetriesPerRequest: 2, connectTimeout: s.redisTimeoutMs });
    redis.on('error', (err) => log.debug({ err: messageOf(err) }, 'fleet: registry connection error'));
    registry = new NodeRegistry(redis, registryKey(s));
    await withTimeout(Promise.all([worker.waitUntilReady(), events.waitUntilReady()]), 30_000, 'connect to Redis');
    // Nodes run BullMQ's stalled-job check: a dead node's job goes back to the wait list.
    await worker.startStalledCheckTimer();
  }

  /** Resolves when the chart's ride region is gone (drained, closed, or failed to connect). */
  const gone = new Promise<void>((resolve) => {
    actor.subscribe((snap) => {
      if (snap.matches({ ride: 'gone' })) resolve();
    });
  });

  async function close(): Promise<void> {
    if (closed) return;
    actor.send({ type: 'node.close' });
    closed = true;
    actor.stop(); // a held job is left: its lock lapses and the stall check requeues it
    await registry?.markGone(nodeId, drained ? 'shut down (drained)' : 'closed').catch(() => undefined);
    await Promise.allSettled([worker?.close(true), events?.close()]);
    redis?.disconnect();
  }

  let drained: Promise<void> | null = null;
  return {
    admit,
    gate,
    nodeId,
    state: () => registryStateOf(actor.getSnapshot()),
    snapshot: () => actor.getSnapshot(),
    chart: { machine: nodeMachine, actor },
    start(url) {
      if (startedUrl) return startedUrl;
      publicUrl = options.publicUrl ?? url;
      if (!options.publicUrl && /\/\/(0\.0\.0\.0|\[::\])[:/]/.test(url)) {
        log.warn({ url }, 'fleet: listening on all interfaces without --public-url: clients will be sent to an address they cannot open');
      }
      actor.send({ type: 'runtime.phase', idle: runtime.phase() === 'idle' });
      startedUrl = new Promise<void>((resolve, reject) => {
        const sub = actor.subscribe((snap) => {
          if (snap.matches({ ride: 'registering' })) return;
          sub.unsubscribe();
          if (snap.matches({ ride: 'gone' }) && !closed && !snap.context.draining) reject(new Error('the node could not connect to the fleet (see the log)'));
          else resolve();
        });
      });
      actor.start();
      return startedUrl;
    },
    drain() {
      if (drained) return drained;
      actor.send({ type: 'node.drain' });
      drained = (async () => {
        if (actor.getSnapshot().status === 'active') await gone;
        await close();
      })();
      return drained;
    },
    close,
  };
}

/**
 * A fleet node: one framehost runtime that takes ride requests from the BullMQ queue, one at a
 * time, and serves each to the client holding its ticket.
 *
 * The node's lifecycle is a chart (src/machines/node.machine.ts: take, reserve, serve, complete;
 * the lease held → late → fenced; the drain); this file is its edge: it provides the chart's
 * actors (BullMQ's take, publish, renew, complete; the registry heartbeat), carries out what the
 * chart emits (log lines, stopping the session), and feeds it the runtime's events. The parts it
 * wires: the connections to Redis (node-links.ts), the held jobs and their lock tokens
 * (held-jobs.ts), admission by ticket (node-admission.ts), the registry entry (node-entry.ts).
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
import type { Logger } from 'pino';
import { createActor, fromCallback, fromPromise, type Actor, type InspectionEvent } from 'xstate';
import { fail, type Result } from '../errors.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { messageOf } from './deadline.ts';
import { HeldJobs } from './held-jobs.ts';
import { NodeAdmission } from './node-admission.ts';
import { nodeEntry, StateChanges } from './node-entry.ts';
import { NodeLinks } from './node-links.ts';
import { DEFAULT_NODE, type NodeSettings } from './options.ts';
import type { NodeState } from './registry.ts';
import type { LiveChart } from '../machines/chart-graph.ts';
import { runtimeMachine } from '../machines/runtime.machine.ts';
import { mayAct, nodeMachine, registryStateOf, type CompleteOutput, type NodeEmitted, type NodeHold, type NodeLine, type NodeMachine, type NodeRideResult, type NodeSnapshot, type TakeOutput } from '../machines/node.machine.ts';

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

/** One of the chart's log lines, as it emits them. */
type LineEvent = Extract<NodeEmitted, { type: 'line' }>;

/** The monotonic clock the chart and the frame path judge the lease by (a wall clock can jump). */
const now = (): number => performance.now();

export function createFleetNode(runtime: Runtime, options: NodeOptions, parentLog: Logger): FleetNode {
  return new ChartedNode(runtime, options, parentLog);
}

/**
 * The node chart's edge: it provides the chart's actors, carries out what the chart emits,
 * feeds it the runtime's events, and answers the node's calls (start, drain and close once each).
 */
class ChartedNode implements FleetNode {
  readonly nodeId: string;
  readonly chart: LiveChart;
  readonly admit: FleetNode['admit'];
  readonly gate: FleetNode['gate'];
  private readonly s: Omit<NodeSettings, 'publicUrl'>;
  private readonly log: Logger;
  private readonly links: NodeLinks;
  private readonly held: HeldJobs;
  private readonly admission: NodeAdmission;
  private readonly actor: Actor<NodeMachine>;
  /** Resolves when the chart's ride region is gone (drained, closed, or failed to connect). */
  private readonly gone: Promise<void>;
  /** What clients are sent to: --public-url, else the address the server listens on (set at start). */
  private publicUrl: string;
  private closed = false;
  private started: Promise<void> | null = null;
  private drained: Promise<void> | null = null;

  constructor(
    private readonly runtime: Runtime,
    private readonly options: NodeOptions,
    parentLog: Logger,
  ) {
    this.nodeId = options.nodeId ?? `node-${randomUUID().slice(0, 8)}`;
    const { inspect, ...settings } = options;
    const s = { ...DEFAULT_NODE, ...settings, nodeId: this.nodeId };
    this.s = s;
    this.log = parentLog.child({ component: 'fleet', node: this.nodeId });
    this.publicUrl = options.publicUrl ?? '';
    this.links = new NodeLinks(s, this.log);
    this.held = new HeldJobs({ settings: s, links: this.links, log: this.log, now, failedStalled: (jobId, reason) => this.say('job.failed_stalled', { jobId, reason }, 'warn') });
    this.actor = createActor(this.machine(), {
      input: { nodeId: this.nodeId, now, times: { leaseMs: s.leaseMs, fenceMarginMs: s.fenceMarginMs, renewEveryMs: s.renewEveryMs, noShowMs: s.noShowMs, drainDeadlineMs: s.drainDeadlineMs, pollMs: s.pollMs } },
      ...(inspect ? { inspect } : {}),
    });
    this.chart = { machine: nodeMachine, actor: this.actor };
    this.admission = new NodeAdmission({
      nodeId: this.nodeId,
      secret: s.secret,
      now,
      snapshot: () => this.actor.getSnapshot(),
      subOf: (jobId) => this.held.get(jobId)?.job.data.sub,
      checkLease: (why) => this.actor.send({ type: 'lease.check', why }),
    });
    this.followChart();
    this.followRuntime();
    this.admit = (request) => this.admission.admit(request);
    this.gate = () => this.gateNow();
    this.gone = new Promise<void>((resolve) => {
      this.actor.subscribe((snap) => {
        if (snap.matches({ ride: 'gone' })) resolve();
      });
    });
  }

  state(): NodeState {
    return registryStateOf(this.actor.getSnapshot());
  }

  snapshot(): NodeSnapshot {
    return this.actor.getSnapshot();
  }

  start(url: string): Promise<void> {
    if (this.started) return this.started;
    this.publicUrl = this.options.publicUrl ?? url;
    if (!this.options.publicUrl && /\/\/(0\.0\.0\.0|\[::\])[:/]/.test(url)) {
      this.log.warn({ url }, 'fleet: listening on all interfaces without --public-url: clients will be sent to an address they cannot open');
    }
    const actor = this.actor;
    actor.send({ type: 'runtime.phase', idle: this.runtime.phase() === 'idle' });
    this.started = new Promise<void>((resolve, reject) => {
      const sub = actor.subscribe((snap) => {
        if (snap.matches({ ride: 'registering' })) return;
        sub.unsubscribe();
        if (snap.matches({ ride: 'gone' }) && !this.closed && !snap.context.draining) reject(new Error('the node could not connect to the fleet (see the log)'));
        else resolve();
      });
    });
    actor.start();
    return this.started;
  }

  drain(): Promise<void> {
    if (this.drained) return this.drained;
    this.actor.send({ type: 'node.drain' });
    this.drained = (async () => {
      if (this.actor.getSnapshot().status === 'active') await this.gone;
      await this.close();
    })();
    return this.drained;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.actor.send({ type: 'node.close' });
    this.closed = true;
    this.actor.stop(); // a held job is left: its lock lapses and the stall check requeues it
    await this.links.close(this.drained ? 'shut down (drained)' : 'closed');
  }

  /** The chart with this node's actors: BullMQ's take, publish, renew and complete; the registry heartbeat. */
  private machine(): NodeMachine {
    const held = this.held;
    return nodeMachine.provide({
      actors: {
        connect: fromPromise(async () => {
          await this.runtime.ready();
          await this.links.open(() => this.actor.send({ type: 'node.wake' }));
        }),
        take: fromPromise<TakeOutput, { take: number }>(async ({ input }) => held.take(input.take)),
        publish: fromPromise<void, NodeHold>(async ({ input }) => this.publish(input)),
        renew: fromPromise(async ({ input }: { input: NodeHold }) => held.renew(input)),
        complete: fromPromise<CompleteOutput, { hold: NodeHold; result: NodeRideResult; fenced: boolean }>(async ({ input }) => held.complete(input.hold, input.result)),
        heartbeat: fromCallback(() => {
          this.heartbeat(); // at once: every state change the gateway should see restarts this
          const timer = setInterval(() => this.heartbeat(), this.s.heartbeatMs);
          return () => clearInterval(timer);
        }),
      },
    });
  }

  /** Carry out what the chart emits; write every change of its active states at once (the gateway's page draws them). */
  private followChart(): void {
    const actor = this.actor;
    actor.on('line', (e) => this.line(e));
    actor.on('ride.riding', ({ hold, sessionId }) => this.held.riding(hold, sessionId));
    actor.on('session.stop', (e) => {
      const r = this.runtime.stop({ reason: e.reason });
      if (!r.ok) this.log.warn({ code: r.error.code, reason: e.reason }, 'fleet: stopping the session was refused (it is ending already)');
    });
    const changes = new StateChanges('node', () => this.heartbeat());
    actor.subscribe({
      next: (snap) => changes.saw(snap.value),
      error: (err) => this.log.error({ err }, 'fleet: the node chart failed'),
    });
  }

  /** Feed the chart the runtime's events. */
  private followRuntime(): void {
    const { runtime, actor } = this;
    // The session that the armed ticket admitted begins synchronously inside runtime.start().
    runtime.on('session.began', (session) => {
      if (this.admission.began()) actor.send({ type: 'session.began', sessionId: session.id });
    });
    runtime.on('session.finished', (e) => actor.send({ type: 'session.finished', sessionId: e.sessionId, reason: e.reason, frames: e.frames, ...(e.error ? { error: e.error } : {}) }));
    runtime.on('phase', ({ phase }) => actor.send({ type: 'runtime.phase', idle: phase === 'idle' }));
    // The gateway's charts page lights the runtime chart too: every change of its active states
    // (a phase, the watchdog, attended/orphaned) is written at once, as the node chart's are.
    const changes = new StateChanges(runtimeMachine.id, () => this.heartbeat());
    runtime.actor.subscribe({
      next: (snap) => changes.saw(snap.value),
      error: () => undefined, // the runtime logs its own chart's errors
    });
  }

  /** One of the chart's log lines, with what only the edge knows added. */
  private line(e: LineEvent): void {
    const jobId = typeof e.fields.jobId === 'string' ? e.fields.jobId : null;
    const h = jobId ? this.held.get(jobId) : undefined;
    const ended = e.line === 'job.completed' || e.line === 'completion.rejected';
    const extra =
      e.line === 'ready' ? { url: this.publicUrl, stalledIntervalMs: this.s.stalledIntervalMs } :
      // `sub`: the user the gateway admitted by access token, so the node's log says whom it serves.
      e.line === 'job.taken' && h ? { issuedAt: h.issuedAt, waitedMs: h.waitedMs, ...(h.job.data.sub ? { sub: h.job.data.sub } : {}) } :
      ended && h ? { withheld: h.withheld } : {};
    this.say(e.line, { ...e.fields, ...extra }, e.level);
    if (ended && jobId) this.held.forget(jobId); // the hold is over: the edge forgets the job object
  }

  private say(event: NodeLogEvent, fields: Record<string, unknown> = {}, level: 'info' | 'warn' = 'info'): void {
    this.log[level]({ fleet: event, ...fields }, `fleet: ${event}`);
  }

  private heartbeat(): void {
    if (!this.links.opened || this.closed || !this.publicUrl) return;
    const entry = nodeEntry(this.actor.getSnapshot(), this.publicUrl, this.runtime.phase(), this.runtime.actor.getSnapshot().value, now());
    this.links.write(entry).catch((err: unknown) => this.log.debug({ err: messageOf(err) }, 'fleet: heartbeat failed'));
  }

  /** The lease on the frame path: refused (`lease_lost`) once this node cannot prove it holds its user. */
  private gateNow(): Result {
    const context = this.actor.getSnapshot().context;
    const t = now();
    if (mayAct(context, t)) return { ok: true };
    const hold = context.hold;
    if (!hold) return fail('lease_lost', 'this node holds no ride');
    if (this.held.withhold(hold.jobId)) {
      this.say('lease.withheld', { jobId: hold.jobId, attempt: hold.attempt, sinceProofMs: Math.round(t - context.proof.proofAt), sessionId: context.sessionId }, 'warn');
    }
    // Fence after the caller's turn: the gate is asked from inside runtime events and socket handlers.
    if (!context.proof.fenced) queueMicrotask(() => this.actor.send({ type: 'lease.check', why: 'lease not proven on the frame path' }));
    return fail('lease_lost');
  }

  /** Tell the gateway (the job's progress); the ticket is armed already (the chart is `reserved`). */
  private async publish(hold: NodeHold): Promise<void> {
    if (!this.held.get(hold.jobId)) return;
    if (!mayAct(this.actor.getSnapshot().context, now())) {
      this.actor.send({ type: 'lease.check', why: 'lease not proven before publishing' });
      return;
    }
    if (await this.held.publish(hold, this.publicUrl)) this.say('job.assigned', { jobId: hold.jobId, attempt: hold.attempt });
  }
}

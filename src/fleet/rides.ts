/**
 * The rides a gateway replica speaks for: one ride chart (src/machines/ride.machine.ts) per
 * ride, fed by the queue's events (every replica sees every job's; each acts for its own), and
 * the effects those charts emit carried out here (tell the client, follow its position, count,
 * record, release the claim). What needs Redis before a chart may hear of it (is an assignment
 * the job's current try?) is checked here too.
 */
import type { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Server, Socket } from 'socket.io';
import { createActor, fromPromise, type Actor } from 'xstate';
import { errorValue } from '../errors.ts';
import { rideMachine, ridePhaseOf, type RideMachine, type RidePhase } from '../machines/ride.machine.ts';
import { activeStateIds } from '../machines/chart-graph.ts';
import { messageOf } from './deadline.ts';
import {
  isAssignmentProgress,
  isRideResult,
  isRidingProgress,
  type Assignment,
  type GatewayClientToServer,
  type GatewayServerToClient,
  type RideEnd,
  type RideJobData,
  type RideResult,
} from './events.ts';
import type { GatewayMetrics } from './metrics.ts';
import { claimKey, type GatewaySettings } from './options.ts';
import type { FleetViewRide } from './page.ts';
import { PositionTracker } from './positions.ts';
import type { GatewayRecord } from './records.ts';
import type { NodeRegistry } from './registry.ts';
import { verifyTicket } from './ticket.ts';
import type { Principal } from '../auth/principal.ts';

export interface GatewaySocketData {
  /** The ride this connection speaks for, if any. */
  jobId: string | null;
  /** Who connected (set by the handshake; src/auth). */
  principal: Principal;
}

export type GatewayIo = Server<GatewayClientToServer, GatewayServerToClient, Record<string, never>, GatewaySocketData>;
export type GatewaySocket = Socket<GatewayClientToServer, GatewayServerToClient, Record<string, never>, GatewaySocketData>;

/** A ride this replica speaks for: its chart and the edge's part. */
export interface Rider {
  readonly jobId: string;
  readonly actor: Actor<RideMachine>;
  socket: GatewaySocket | null;
  /** This replica's claim on the job (see claimKey). */
  claim: string;
}

export interface RidesDeps {
  readonly settings: GatewaySettings;
  readonly queue: Queue<RideJobData, RideResult, string>;
  readonly redis: Redis;
  readonly registry: NodeRegistry;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  readonly record: (r: GatewayRecord) => void;
  /** Bound on a Redis call. */
  readonly timed: <T>(p: Promise<T>, what: string) => Promise<T>;
  /** A node was marked gone: what the fleet reads must be read again. */
  readonly nodesChanged: () => void;
}

export class Rides {
  readonly totals = { assignments: 0, reassignments: 0, requeues: 0 };
  readonly positions: PositionTracker;
  private readonly riders = new Map<string, Rider>();
  private readonly logic: ReturnType<typeof rideMachine.provide>;

  constructor(private readonly d: RidesDeps) {
    const s = d.settings;
    this.positions = new PositionTracker({
      read: () => d.queue.getRanges(['wait'], 0, -1, true),
      deliver: (notice) => this.riders.get(notice.jobId)?.socket?.emit('queue', notice),
      debounceMs: s.positionDebounceMs,
      refreshMs: s.positionRefreshMs,
      timeoutMs: s.redisTimeoutMs,
      log: d.log,
      observe: (seconds) => d.metrics.positionRead(seconds),
    });
    this.logic = rideMachine.provide({
      actors: {
        // The client did not come back within the grace: a waiting ride leaves the queue.
        abandon: fromPromise<{ removed: boolean }, { jobId: string }>(async ({ input }) => {
          const rider = this.riders.get(input.jobId);
          if (!rider || rider.socket) return { removed: false };
          try {
            const claim = await d.timed(d.redis.get(claimKey(s, input.jobId)), 'read the claim');
            // Not removed: another replica's connection took the ride over, or a node has just
            // taken it (its no-show timeout releases it).
            if (claim === rider.claim) return { removed: (await d.timed(d.queue.remove(input.jobId), 'remove the job')) === 1 };
          } catch (err) {
            d.log.warn({ jobId: input.jobId, err: messageOf(err) }, 'gateway: removing an abandoned ride failed');
          }
          return { removed: false };
        }),
      },
    });
  }

  get(jobId: string): Rider | undefined {
    return this.riders.get(jobId);
  }
  has(jobId: string): boolean {
    return this.riders.has(jobId);
  }
  phaseOf(r: Rider): RidePhase {
    return ridePhaseOf(r.actor.getSnapshot());
  }
  /** Waiting for a node: in line for the first time, or again after a requeue. */
  inLine(r: Rider): boolean {
    const p = this.phaseOf(r);
    return p === 'waiting' || p === 'requeued';
  }
  counts(): { waiting: number; assigned: number } {
    let waiting = 0;
    for (const r of this.riders.values()) if (this.inLine(r)) waiting++;
    return { waiting, assigned: this.riders.size - waiting };
  }
  private countRiders(): void {
    const c = this.counts();
    this.d.metrics.riders(c.waiting, c.assigned);
  }

  /** Start speaking for a ride (a new request, or a takeover with `resume`; `held`: a node holds it). */
  open(jobId: string, requestedAt: number, socket: GatewaySocket, claim: string, held?: { attempt: number }): Rider {
    const { d } = this;
    const s = d.settings;
    const actor = createActor(this.logic, {
      input: { jobId, requestedAt, now: Date.now, times: { reconnectGraceMs: s.reconnectGraceMs, noShowMs: s.noShowMs }, ...(held ? { held } : {}) },
    });
    const rider: Rider = { jobId, actor, socket, claim };
    actor.on('positions.watch', () => this.positions.watch(jobId));
    actor.on('positions.unwatch', () => this.positions.unwatch(jobId));
    actor.on('tell.assigned', ({ assignment, reassignment }) => {
      this.totals.assignments++;
      if (reassignment) this.totals.reassignments++;
      rider.socket?.emit('assigned', assignment);
      d.record({ kind: 'assigned', t: Date.now(), jobId, node: assignment.node, attempt: assignment.attempt, reassignment });
    });
    actor.on('waited', ({ seconds, reassignment }) => d.metrics.assigned(seconds, reassignment));
    actor.on('tell.requeued', () => {
      this.totals.requeues++;
      d.metrics.requeued();
      rider.socket?.emit('requeued', { jobId, reason: 'node_lost' });
      d.record({ kind: 'requeued', t: Date.now(), jobId });
    });
    actor.on('tell.ended', (e) => {
      const payload: RideEnd = { jobId, reason: e.reason as RideEnd['reason'], ...(e.error ? { error: e.error } : {}) };
      if (rider.socket) {
        rider.socket.emit('ended', payload);
        rider.socket.data.jobId = null;
      }
      d.metrics.ended(e.reason);
      d.record({ kind: 'ended', t: Date.now(), jobId, reason: e.reason, ...(e.error ? { error: e.error.code } : {}) });
      d.redis.del(claimKey(s, jobId)).catch(() => undefined);
      this.forget(rider);
    });
    actor.on('abandoned', ({ removed }) => {
      if (removed) {
        d.metrics.ended('cancelled');
        d.redis.del(claimKey(s, jobId)).catch(() => undefined);
        this.positions.poke();
      }
      d.record({ kind: 'abandoned', t: Date.now(), jobId, removed });
      this.forget(rider);
    });
    actor.subscribe({ next: () => this.countRiders(), error: (err) => d.log.error({ err, jobId }, 'gateway: a ride chart failed') });
    this.riders.set(jobId, rider);
    actor.start();
    return rider;
  }

  /** This replica stops speaking for the ride (it ended, its client is gone for good, or its request failed). */
  forget(rider: Rider): void {
    if (this.riders.get(rider.jobId) !== rider) return;
    this.riders.delete(rider.jobId);
    this.positions.unwatch(rider.jobId);
    queueMicrotask(() => rider.actor.stop()); // not from inside its own emitted event
    this.countRiders();
  }

  /** Follow the queue's events. */
  listen(events: QueueEvents): void {
    const { d } = this;
    events.on('progress', ({ jobId, data }) => void this.onProgress(jobId, data));
    events.on('stalled', ({ jobId }) => {
      this.positions.poke(); // the stalled job went back to the head: everyone behind it moves down one
      const rider = this.riders.get(jobId);
      if (!rider) return;
      // Its node is gone now, not when its heartbeats have been missed long enough: say so.
      const node = rider.actor.getSnapshot().context.assignment?.node;
      if (node) {
        d.registry
          .markGone(node, `its ride ${jobId} was requeued: it stopped renewing its lease (it died, froze or lost Redis)`)
          .then(d.nodesChanged, (err: unknown) => d.log.debug({ err: messageOf(err) }, 'gateway: marking a node gone failed'));
      }
      rider.actor.send({ type: 'ride.requeued' });
    });
    events.on('completed', ({ jobId, returnvalue }) => {
      const rider = this.riders.get(jobId);
      if (!rider) return;
      const r: unknown = returnvalue;
      if (isRideResult(r)) rider.actor.send({ type: 'ride.ended', reason: r.reason, ...(r.error ? { error: r.error } : {}) });
      else rider.actor.send({ type: 'ride.ended', reason: 'returned' });
    });
    events.on('failed', ({ jobId, failedReason }) => {
      // BullMQ fails a job that stalled more than maxStalledCount times: its nodes kept dying.
      const code = /stalled/i.test(failedReason) ? 'node_lost' : 'internal';
      this.riders.get(jobId)?.actor.send({ type: 'ride.ended', reason: 'failed', error: errorValue(code, failedReason) });
    });
    events.on('removed', ({ jobId }) => {
      this.positions.poke();
      this.riders.get(jobId)?.actor.send({ type: 'ride.ended', reason: 'cancelled' });
    });
    events.on('waiting', () => this.positions.poke());
    events.on('active', () => this.positions.poke());
  }

  private async onProgress(jobId: string, data: unknown): Promise<void> {
    const { d } = this;
    const rider = this.riders.get(jobId);
    if (!rider) return;
    if (isRidingProgress(data)) {
      rider.actor.send({ type: 'ride.riding', attempt: data.attempt, sessionId: data.sessionId });
      return;
    }
    if (!isAssignmentProgress(data)) return;
    const fresh = (): boolean => this.riders.get(jobId) === rider && (this.inLine(rider) || data.attempt > rider.actor.getSnapshot().context.attempt);
    if (!fresh()) return;
    const stale = (why: string): void => {
      d.log.warn({ jobId, node: data.node, attempt: data.attempt, why }, 'gateway: stale or bad assignment ignored');
      d.record({ kind: 'stale_assignment', t: Date.now(), jobId, node: data.node, attempt: data.attempt, why });
    };
    const secret = d.settings.secret;
    if (secret) {
      const v = verifyTicket(data.ticket, secret);
      if (!v.ok || v.claims.jobId !== jobId || v.claims.node !== data.node || v.claims.attempt !== data.attempt) return stale('the ticket does not verify');
    }
    // A node that froze between taking the job and publishing may announce after the job was
    // requeued: forward only the job's current try, while a node holds it.
    try {
      const job = await d.timed(d.queue.getJob(jobId), 'read the job');
      if (!job || job.attemptsStarted !== data.attempt) return stale(`the job's current attempt is ${job?.attemptsStarted ?? 'gone'}`);
      if (!(await d.timed(job.isActive(), 'read the job state'))) return stale('the job is not held by a node');
    } catch (err) {
      d.log.warn({ jobId, err: messageOf(err) }, 'gateway: checking an assignment failed; forwarding it');
    }
    if (!fresh()) return;
    const assignment: Assignment = { jobId, url: data.url, ticket: data.ticket, node: data.node, attempt: data.attempt };
    rider.actor.send({ type: 'ride.assigned', assignment });
  }

  /** The rides as the fleet page shows them. */
  views(now: number = Date.now()): FleetViewRide[] {
    return [...this.riders.values()].map((r) => {
      const snap = r.actor.getSnapshot();
      const c = snap.context;
      const line = this.inLine(r);
      return {
        jobId: r.jobId,
        phase: ridePhaseOf(snap),
        node: c.assignment?.node ?? null,
        attempt: c.attempt,
        position: line ? this.positions.positionOf(r.jobId) : null,
        waitingMs: line ? now - (c.requeuedAt ?? c.requestedAt) : 0,
        requeues: c.requeues,
        states: activeStateIds('ride', snap.value),
      };
    });
  }

  close(): void {
    this.positions.close();
    for (const r of this.riders.values()) r.actor.stop();
    this.riders.clear();
  }
}

/**
 * The gateway's answers to a client's ride requests: a new ride (`ride:request`), a ride taken
 * along from another connection (`ride:request` with `resume`), and leaving the line
 * (`ride:cancel`). Each checks, talks to Redis within its timeout, and hands the ride to its
 * chart (Rides); the answer is a Result value.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { fail, type Result } from '../errors.ts';
import { isPlainObject } from '../transport/socket/validate.ts';
import { messageOf } from './deadline.ts';
import type { RideGrant } from './events.ts';
import type { GatewayLinks } from './gateway-links.ts';
import type { GatewayMetrics } from './metrics.ts';
import { claimKey, type GatewaySettings } from './options.ts';
import type { GatewayRecord } from './records.ts';
import type { GatewaySocket, Rides } from './rides.ts';

/** Completed and failed jobs are kept a while for inspection, then BullMQ trims them. */
const KEEP_FINISHED = { age: 3600, count: 1000 };
/** A claim outlives any reconnect grace by far; it only has to expire eventually. */
const CLAIM_TTL_MS = 6 * 3600_000;
const MAX_ID_LENGTH = 128;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const sameHex = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export interface RideDeskDeps {
  readonly settings: GatewaySettings;
  readonly links: GatewayLinks;
  readonly rides: Rides;
  readonly metrics: GatewayMetrics;
  readonly record: (r: GatewayRecord) => void;
  readonly log: Logger;
}

/** What a job in Redis says about a ride a client wants to take along. */
type Resumable = { readonly state: string; readonly attempt: number; readonly requestedAt: number };

/** Answers ride requests and cancellations for this replica's connections. */
export class RideDesk {
  constructor(private readonly d: RideDeskDeps) {}

  async request(socket: GatewaySocket, req: unknown): Promise<Result<RideGrant>> {
    const { settings: s, links, rides } = this.d;
    if (!isPlainObject(req)) return fail('bad_request', 'ride:request takes an object');
    if (socket.data.jobId && rides.has(socket.data.jobId)) return fail('bad_request', 'this connection already has a ride');
    const away = links.unreachable();
    if (away) return away;
    if (req.resume !== undefined) return this.resume(socket, req.resume);
    let waiting: number;
    try {
      waiting = await links.timed(links.queue.getWaitingCount(), 'count waiting jobs');
    } catch (err) {
      return fail('queue_unavailable', messageOf(err));
    }
    if (waiting >= s.maxQueue) return fail('queue_full', `${waiting} requests are waiting`);
    const jobId = randomUUID();
    const secret = randomBytes(24).toString('base64url');
    const requestedAt = Date.now();
    const sub = socket.data.principal.sub;
    // Registered before the job exists: a free node may take it and announce before add() returns.
    const rider = rides.open(jobId, requestedAt, socket, randomUUID());
    socket.data.jobId = jobId;
    try {
      await links.timed(links.redis.set(claimKey(s, jobId), rider.claim, 'PX', CLAIM_TTL_MS), 'claim the ride');
      const data = { secretHash: sha256(secret), requestedAt, ...(sub !== null ? { sub } : {}) };
      await links.timed(links.queue.add('ride', data, { jobId, removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED }), 'add the job');
    } catch (err) {
      rides.forget(rider);
      socket.data.jobId = null;
      links.queue.remove(jobId).catch(() => undefined); // in case the add went through after the timeout
      return fail('queue_unavailable', messageOf(err));
    }
    this.d.metrics.requested();
    this.d.record({ kind: 'requested', t: Date.now(), jobId });
    return { ok: true, jobId, secret };
  }

  async cancel(socket: GatewaySocket): Promise<Result> {
    const { links, rides } = this.d;
    const rider = socket.data.jobId ? rides.get(socket.data.jobId) : undefined;
    if (!rider || rider.socket !== socket) return fail('no_session', 'this connection has no ride');
    if (!rides.inLine(rider)) return fail('bad_request', 'the ride is assigned: stop the session on the node instead');
    const away = links.unreachable();
    if (away) return away;
    let removed: number;
    try {
      removed = await links.timed(links.queue.remove(rider.jobId), 'remove the job');
    } catch (err) {
      return fail('queue_unavailable', messageOf(err));
    }
    if (removed !== 1) return fail('bad_request', 'a node has just taken the ride');
    rider.actor.send({ type: 'ride.ended', reason: 'cancelled' });
    return { ok: true };
  }

  /** Take a ride along from another connection (maybe on another replica), proven by its secret. */
  private async resume(socket: GatewaySocket, resume: unknown): Promise<Result<RideGrant>> {
    const { settings: s, links, rides } = this.d;
    if (!isPlainObject(resume) || typeof resume.jobId !== 'string' || typeof resume.secret !== 'string' || resume.jobId.length > MAX_ID_LENGTH || resume.secret.length > MAX_ID_LENGTH) {
      return fail('bad_request', 'resume takes { jobId, secret }');
    }
    const { jobId, secret } = resume as { jobId: string; secret: string };
    const found = await this.resumable(socket, jobId, secret);
    if (!found.ok) return found;
    const { state, attempt, requestedAt } = found;
    if (state === 'completed' || state === 'failed' || state === 'unknown') return fail('no_session', 'the ride has ended');
    const claim = randomUUID();
    try {
      await links.timed(links.redis.set(claimKey(s, jobId), claim, 'PX', CLAIM_TTL_MS), 'claim the ride');
    } catch (err) {
      return fail('queue_unavailable', messageOf(err));
    }
    let rider = rides.get(jobId);
    if (rider) {
      if (rider.socket && rider.socket !== socket) rider.socket.data.jobId = null;
      rider.socket = socket;
      rider.claim = claim;
      rider.actor.send({ type: 'client.back' });
    } else {
      rider = rides.open(jobId, requestedAt, socket, claim, state === 'active' ? { attempt } : undefined);
    }
    socket.data.jobId = jobId;
    this.d.log.info({ jobId, state: rides.phaseOf(rider) }, 'gateway: ride resumed');
    return { ok: true, jobId, secret };
  }

  /** The job, if it exists, the secret is its own and the connection's user may take it. */
  private async resumable(socket: GatewaySocket, jobId: string, secret: string): Promise<Result<Resumable>> {
    const { links } = this.d;
    try {
      const job = await links.timed(links.queue.getJob(jobId), 'read the job');
      if (!job || typeof job.data?.secretHash !== 'string') return fail('no_session', 'no such ride (it ended or was removed)');
      if (!sameHex(sha256(secret), job.data.secretHash)) return fail('unauthorized', 'wrong ride secret');
      // A ride belongs to its user: a token of another `sub` may not take it over, even with its secret.
      const sub = socket.data.principal.sub;
      if (job.data.sub !== undefined && sub !== null && sub !== job.data.sub) return fail('not_owner', 'the ride belongs to another user');
      const state = await links.timed(job.getState(), 'read the job state');
      return { ok: true, state, attempt: job.attemptsStarted, requestedAt: job.data.requestedAt };
    } catch (err) {
      return fail('queue_unavailable', messageOf(err));
    }
  }
}

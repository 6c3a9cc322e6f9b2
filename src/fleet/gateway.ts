/**
 * The fleet gateway: one endpoint in front of many nodes. Stateless (any number of replicas
 * behind a load balancer): everything that must survive it is in Redis.
 *
 * A client connects (Socket.IO: polling upgraded to websocket, or websocket at once) and asks for a ride; the gateway adds a BullMQ
 * job and from then on pushes the client its place in line whenever it changes, then the
 * assignment `{ url, ticket }` that the node published as the job's progress. The client goes
 * to the node itself (a redirect, not a proxy): no frame ever passes through here. When the
 * node is lost the client is told (`requeued`) and gets a new assignment; when the ride ends
 * (the job completed or failed) the client is told how (`ended`).
 *
 * Each replica acts only for its own connections: every replica reads every queue event
 * (QueueEvents), and ignores the jobs it has no client for. A client that reconnects to another
 * replica takes its ride along with `resume: { jobId, secret }`; a claim key in Redis says which
 * connection speaks for a waiting job, so the old replica's reconnect grace does not remove it.
 *
 * Redis may be away at start or later: the gateway listens at once, answers `/ready` 503 with
 * the reason and refuses ride requests with `queue_unavailable` while it is, and carries on by
 * itself once ioredis has reconnected (RedisLink).
 */
import { handshakeError, originCheck, presentsSecret } from '../transport/handshake.ts';
import { listenOn } from '../util/listen.ts';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { Queue, QueueEvents } from 'bullmq';
import { pino, type Logger } from 'pino';
import { Server, type Socket } from 'socket.io';
import { createActor, fromPromise, type Actor } from 'xstate';
import { rideMachine, ridePhaseOf, type RideMachine, type RidePhase } from '../machines/ride.machine.ts';
import { errorValue, fail, type Result } from '../errors.ts';
import { TokenBucket } from '../transport/rate-limit.ts';
import { isPlainObject } from '../transport/validate.ts';
import { Emitter } from '../util/emitter.ts';
import { messageOf, withTimeout } from './deadline.ts';
import {
  GATEWAY_CLIENT_EVENTS,
  isAssignmentProgress,
  isRideResult,
  isRidingProgress,
  type Assignment,
  type GatewayClientToServer,
  type GatewayServerToClient,
  type RideEnd,
  type RideGrant,
  type RideJobData,
  type RideResult,
} from './events.ts';
import { createGatewayMetrics, type FleetSnapshot, type GatewayMetrics } from './metrics.ts';
import { claimKey, connectionOf, DEFAULT_GATEWAY, registryKey, type GatewaySettings } from './options.ts';
import { PositionTracker } from './positions.ts';
import { FLEET_PAGE_HTML, type FleetView } from './page.ts';
import { NodeRegistry, openRedis, type GoneNode } from './registry.ts';
import { RedisLink, type LinkStatus } from './redis-link.ts';
import { verifyTicket } from './ticket.ts';

interface GatewaySocketData {
  /** The ride this connection speaks for, if any. */
  jobId: string | null;
}

export type GatewayIo = Server<GatewayClientToServer, GatewayServerToClient, Record<string, never>, GatewaySocketData>;
type GatewaySocket = Socket<GatewayClientToServer, GatewayServerToClient, Record<string, never>, GatewaySocketData>;

/** A ride this replica speaks for: its chart (src/machines/ride.machine.ts) and the edge's part. */
interface Rider {
  readonly jobId: string;
  readonly actor: Actor<RideMachine>;
  socket: GatewaySocket | null;
  /** This replica's claim on the job (see claimKey). */
  claim: string;
}

/** One line of the gateway's record of what happened, for tests' invariant checks and debugging. */
export type GatewayRecord =
  | { kind: 'requested'; t: number; jobId: string }
  | { kind: 'assigned'; t: number; jobId: string; node: string; attempt: number; reassignment: boolean }
  | { kind: 'stale_assignment'; t: number; jobId: string; node: string; attempt: number; why: string }
  | { kind: 'requeued'; t: number; jobId: string }
  | { kind: 'ended'; t: number; jobId: string; reason: string; error?: string }
  | { kind: 'abandoned'; t: number; jobId: string; removed: boolean };

export interface GatewayHealth {
  readonly status: 'ok' | 'degraded';
  /** The gateway's connection to Redis: `up`, or `connecting`/`down` with the reason. */
  readonly redis: LinkStatus;
  readonly queue: { readonly name: string; readonly waiting: number; readonly active: number } | null;
  readonly nodes: {
    readonly total: number;
    readonly free: number;
    readonly assigned: number;
    readonly busy: number;
    readonly draining: number;
    readonly gone: number;
    readonly list: readonly { id: string; url: string; state: string; ageMs: number; sessions: number; ride: string | null; leaseAgeMs: number | null; fences: number; refusedCompletions: number }[];
    /** Gone nodes, newest first, with when and why (kept for `nodeGoneKeepMs`). */
    readonly goneList: readonly GoneNode[];
  } | null;
  /** Summed over the nodes in the registry (live and gone): their own counts. */
  readonly fences?: number;
  readonly refusedCompletions?: number;
  readonly clients: { readonly waiting: number; readonly assigned: number };
  readonly assignments: number;
  readonly reassignments: number;
  readonly requeues: number;
  readonly error?: string;
}

export interface Gateway {
  readonly url: string;
  readonly port: number;
  readonly http: HttpServer;
  readonly io: GatewayIo;
  readonly metrics: GatewayMetrics;
  health(): Promise<GatewayHealth>;
  /** What `/ready` answers: ready while Redis answers (and, with `minNodes`, enough nodes are live), else why not. */
  readiness(): Promise<Readiness>;
  /** Resolves once Redis has been reached (the gateway serves HTTP before that). */
  readonly connected: Promise<void>;
  on(event: 'record', fn: (record: GatewayRecord) => void): () => void;
  close(): Promise<void>;
}

export interface Readiness {
  readonly ready: boolean;
  readonly reason?: string;
}

export type GatewayOptions = Partial<GatewaySettings> & Pick<GatewaySettings, 'redisUrl'> & { readonly logger?: Logger };

/** Completed and failed jobs are kept a while for inspection, then BullMQ trims them. */
const KEEP_FINISHED = { age: 3600, count: 1000 };
/** A claim outlives any reconnect grace by far; it only has to expire eventually. */
const CLAIM_TTL_MS = 6 * 3600_000;
const MAX_ID_LENGTH = 128;
/** How long close() waits for Redis to take the QUITs before cutting the connections. */
const CLOSE_TIMEOUT_MS = 2_000;
/** Events the fleet page lists; live viewers of it at once; how often it is refreshed without an event. */
const HISTORY = 30;
const MAX_PAGE_VIEWERS = 32;
const PAGE_REFRESH_MS = 500;

function describeRecord(r: GatewayRecord): string {
  switch (r.kind) {
    case 'requested':
      return 'in line';
    case 'assigned':
      return `to ${r.node} (attempt ${r.attempt})${r.reassignment ? ', after a requeue' : ''}`;
    case 'stale_assignment':
      return `ignored ${r.node}'s stale assignment: ${r.why}`;
    case 'requeued':
      return 'its node was lost: back at the head of the line';
    case 'ended':
      return r.reason + (r.error ? ` (${r.error})` : '');
    case 'abandoned':
      return r.removed ? 'client gone: left the line' : 'client gone: the ride lives on at its node';
  }
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const sameHex = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const s: GatewaySettings = { ...DEFAULT_GATEWAY, ...options };
  const log = (options.logger ?? pino({ level: process.env.FRAMEHOST_LOG_LEVEL ?? 'info' })).child({ component: 'gateway' });
  // BullMQ's own reconnect backoff grows to 20 s between tries; a gateway back from a Redis
  // outage should notice within a couple of seconds, like the ioredis default.
  const connection = { ...connectionOf(s.redisUrl), retryStrategy: (times: number) => Math.min(times * 100, 2000) };
  const queue = new Queue<RideJobData, RideResult, string>(s.queue, { connection, prefix: s.prefix });
  queue.on('error', (err) => log.warn({ err: messageOf(err) }, 'gateway: queue connection error'));
  // QueueEvents is made once Redis has answered: BullMQ cannot close one that never connected
  // (its close awaits the connection first), and a gateway must stop at any moment.
  let events: QueueEvents | null = null;
  let closing = false;
  const redis = openRedis(s.redisUrl, { maxRetriesPerRequest: 2, connectTimeout: s.redisTimeoutMs });
  redis.on('error', (err) => log.debug({ err: messageOf(err) }, 'gateway: redis connection error'));
  const registry = new NodeRegistry(redis, registryKey(s));
  const link = new RedisLink();
  link.watch(redis);
  link.await(queue.waitUntilReady());
  link.await(
    new Promise<void>((resolve, reject) => {
      redis.once('ready', () => {
        if (closing) return;
        events = openEvents();
        events.waitUntilReady().then(resolve, reject);
      });
    }),
  );
  const connected = new Promise<void>((resolve) => {
    if (link.up) resolve();
    link.onChange((l) => {
      if (l.state === 'up') resolve();
    });
  });
  link.onChange((l) => {
    if (l.state === 'up') log.info({ redis: 'up' }, 'gateway: connected to Redis');
    else log.warn({ redis: l.state, reason: l.reason }, 'gateway: Redis unreachable; /ready answers 503 until it is back');
  });
  /** Refuse at once while Redis is away, rather than after a Redis timeout. */
  const unreachable = (): ReturnType<typeof fail> | null => (link.up ? null : fail('queue_unavailable', link.status().reason));
  const records = new Emitter<{ record: GatewayRecord }>((err) => log.error({ err }, 'gateway: record listener threw'));
  /** The last records, for the fleet page's history. */
  const history: GatewayRecord[] = [];
  const record = (r: GatewayRecord): void => {
    history.push(r);
    if (history.length > HISTORY) history.shift();
    records.emit('record', r);
  };
  const riders = new Map<string, Rider>();
  const totals = { assignments: 0, reassignments: 0, requeues: 0 };
  const timed = <T>(p: Promise<T>, what: string): Promise<T> => withTimeout(p, s.redisTimeoutMs, what);

  // One Redis read of the fleet per second at most, however many scrapes and health probes come.
  let cached: { at: number; value: Promise<FleetSnapshot> } | null = null;
  const snapshot = (): Promise<FleetSnapshot> => {
    const now = performance.now();
    if (cached && now - cached.at < 1000) return cached.value;
    const value = (async () => {
      const [counts, nodes] = await Promise.all([timed(queue.getJobCounts('wait', 'active'), 'count jobs'), timed(registry.list(s.nodeStaleMs, s.nodeGoneKeepMs), 'read the node registry')]);
      return { waiting: counts.wait ?? 0, active: counts.active ?? 0, nodes: nodes.live, gone: nodes.gone };
    })();
    value.catch(() => {
      if (cached?.value === value) cached = null;
    });
    cached = { at: now, value };
    return value;
  };
  const metrics = createGatewayMetrics(snapshot);
  const phaseOf = (r: Rider): RidePhase => ridePhaseOf(r.actor.getSnapshot());
  const inLine = (r: Rider): boolean => {
    const p = phaseOf(r);
    return p === 'waiting' || p === 'requeued';
  };
  const countRiders = (): void => {
    let w = 0;
    for (const r of riders.values()) if (inLine(r)) w++;
    metrics.riders(w, riders.size - w);
  };

  const positions = new PositionTracker({
    read: () => queue.getRanges(['wait'], 0, -1, true),
    deliver: (notice) => riders.get(notice.jobId)?.socket?.emit('queue', notice),
    debounceMs: s.positionDebounceMs,
    refreshMs: s.positionRefreshMs,
    timeoutMs: s.redisTimeoutMs,
    log,
    observe: (seconds) => metrics.positionRead(seconds),
  });

  // ---- one ride chart per ride; its emitted effects are carried out here ----
  const rideLogic = rideMachine.provide({
    actors: {
      // The client did not come back within the grace: a waiting ride leaves the queue.
      abandon: fromPromise<{ removed: boolean }, { jobId: string }>(async ({ input }) => {
        const rider = riders.get(input.jobId);
        if (!rider || rider.socket) return { removed: false };
        try {
          const claim = await timed(redis.get(claimKey(s, input.jobId)), 'read the claim');
          // Not removed: another replica's connection took the ride over, or a node has just
          // taken it (its no-show timeout releases it).
          if (claim === rider.claim) return { removed: (await timed(queue.remove(input.jobId), 'remove the job')) === 1 };
        } catch (err) {
          log.warn({ jobId: input.jobId, err: messageOf(err) }, 'gateway: removing an abandoned ride failed');
        }
        return { removed: false };
      }),
    },
  });

  function openRide(jobId: string, requestedAt: number, socket: GatewaySocket, claim: string, held?: { attempt: number }): Rider {
    const actor = createActor(rideLogic, {
      input: { jobId, requestedAt, now: Date.now, times: { reconnectGraceMs: s.reconnectGraceMs, noShowMs: s.noShowMs }, ...(held ? { held } : {}) },
    });
    const rider: Rider = { jobId, actor, socket, claim };
    actor.on('positions.watch', () => positions.watch(jobId));
    actor.on('positions.unwatch', () => positions.unwatch(jobId));
    actor.on('tell.assigned', ({ assignment, reassignment }) => {
      totals.assignments++;
      if (reassignment) totals.reassignments++;
      rider.socket?.emit('assigned', assignment);
      record({ kind: 'assigned', t: Date.now(), jobId, node: assignment.node, attempt: assignment.attempt, reassignment });
    });
    actor.on('waited', ({ seconds, reassignment }) => metrics.assigned(seconds, reassignment));
    actor.on('tell.requeued', () => {
      totals.requeues++;
      metrics.requeued();
      rider.socket?.emit('requeued', { jobId, reason: 'node_lost' });
      record({ kind: 'requeued', t: Date.now(), jobId });
    });
    actor.on('tell.ended', (e) => {
      const payload: RideEnd = { jobId, reason: e.reason as RideEnd['reason'], ...(e.error ? { error: e.error } : {}) };
      if (rider.socket) {
        rider.socket.emit('ended', payload);
        rider.socket.data.jobId = null;
      }
      metrics.ended(e.reason);
      record({ kind: 'ended', t: Date.now(), jobId, reason: e.reason, ...(e.error ? { error: e.error.code } : {}) });
      redis.del(claimKey(s, jobId)).catch(() => undefined);
      forget(rider);
    });
    actor.on('abandoned', ({ removed }) => {
      if (removed) {
        metrics.ended('cancelled');
        redis.del(claimKey(s, jobId)).catch(() => undefined);
        positions.poke();
      }
      record({ kind: 'abandoned', t: Date.now(), jobId, removed });
      forget(rider);
    });
    actor.subscribe({ next: () => countRiders(), error: (err) => log.error({ err, jobId }, 'gateway: a ride chart failed') });
    riders.set(jobId, rider);
    actor.start();
    return rider;
  }

  /** This replica stops speaking for the ride (it ended, or its client is gone for good). */
  function forget(rider: Rider): void {
    if (riders.get(rider.jobId) !== rider) return;
    riders.delete(rider.jobId);
    positions.unwatch(rider.jobId);
    queueMicrotask(() => rider.actor.stop()); // not from inside its own emitted event
    countRiders();
  }

  // ---- queue events: every replica sees every job's; each acts for its own riders ----
  function openEvents(): QueueEvents {
    const events = new QueueEvents(s.queue, { connection, prefix: s.prefix });
    events.on('error', (err) => log.warn({ err: messageOf(err) }, 'gateway: queue events error'));
    events.on('progress', ({ jobId, data }) => void onProgress(jobId, data));
    events.on('stalled', ({ jobId }) => {
      positions.poke(); // the stalled job went back to the head: everyone behind it moves down one
      const rider = riders.get(jobId);
      if (!rider) return;
      // Its node is gone now, not when its heartbeats have been missed long enough: say so.
      const node = rider.actor.getSnapshot().context.assignment?.node;
      if (node) {
        registry.markGone(node, `its ride ${jobId} was requeued: it stopped renewing its lease (it died, froze or lost Redis)`).catch((err: unknown) => log.debug({ err: messageOf(err) }, 'gateway: marking a node gone failed'));
        cached = null;
      }
      rider.actor.send({ type: 'ride.requeued' });
    });
    events.on('completed', ({ jobId, returnvalue }) => {
      const rider = riders.get(jobId);
      if (!rider) return;
      const r: unknown = returnvalue;
      if (isRideResult(r)) rider.actor.send({ type: 'ride.ended', reason: r.reason, ...(r.error ? { error: r.error } : {}) });
      else rider.actor.send({ type: 'ride.ended', reason: 'returned' });
    });
    events.on('failed', ({ jobId, failedReason }) => {
      // BullMQ fails a job that stalled more than maxStalledCount times: its nodes kept dying.
      const code = /stalled/i.test(failedReason) ? 'node_lost' : 'internal';
      riders.get(jobId)?.actor.send({ type: 'ride.ended', reason: 'failed', error: errorValue(code, failedReason) });
    });
    events.on('removed', ({ jobId }) => {
      positions.poke();
      riders.get(jobId)?.actor.send({ type: 'ride.ended', reason: 'cancelled' });
    });
    events.on('waiting', () => positions.poke());
    events.on('active', () => positions.poke());
    return events;
  }

  async function onProgress(jobId: string, data: unknown): Promise<void> {
    const rider = riders.get(jobId);
    if (!rider) return;
    if (isRidingProgress(data)) {
      rider.actor.send({ type: 'ride.riding', attempt: data.attempt, sessionId: data.sessionId });
      return;
    }
    if (!isAssignmentProgress(data)) return;
    const fresh = (): boolean => riders.get(jobId) === rider && (inLine(rider) || data.attempt > rider.actor.getSnapshot().context.attempt);
    if (!fresh()) return;
    const stale = (why: string): void => {
      log.warn({ jobId, node: data.node, attempt: data.attempt, why }, 'gateway: stale or bad assignment ignored');
      record({ kind: 'stale_assignment', t: Date.now(), jobId, node: data.node, attempt: data.attempt, why });
    };
    if (s.secret) {
      const v = verifyTicket(data.ticket, s.secret);
      if (!v.ok || v.claims.jobId !== jobId || v.claims.node !== data.node || v.claims.attempt !== data.attempt) return stale('the ticket does not verify');
    }
    // A node that froze between taking the job and publishing may announce after the job was
    // requeued: forward only the job's current try, while a node holds it.
    try {
      const job = await timed(queue.getJob(jobId), 'read the job');
      if (!job || job.attemptsStarted !== data.attempt) return stale(`the job's current attempt is ${job?.attemptsStarted ?? 'gone'}`);
      if (!(await timed(job.isActive(), 'read the job state'))) return stale('the job is not held by a node');
    } catch (err) {
      log.warn({ jobId, err: messageOf(err) }, 'gateway: checking an assignment failed; forwarding it');
    }
    if (!fresh()) return;
    const assignment: Assignment = { jobId, url: data.url, ticket: data.ticket, node: data.node, attempt: data.attempt };
    rider.actor.send({ type: 'ride.assigned', assignment });
  }

  // ---- client requests ----
  async function requestRide(socket: GatewaySocket, req: unknown): Promise<Result<RideGrant>> {
    if (!isPlainObject(req)) return fail('bad_request', 'ride:request takes an object');
    if (socket.data.jobId && riders.has(socket.data.jobId)) return fail('bad_request', 'this connection already has a ride');
    const away = unreachable();
    if (away) return away;
    if (req.resume !== undefined) return resumeRide(socket, req.resume);
    let waiting: number;
    try {
      waiting = await timed(queue.getWaitingCount(), 'count waiting jobs');
    } catch (err) {
      return fail('queue_unavailable', messageOf(err));
    }
    if (waiting >= s.maxQueue) return fail('queue_full', `${waiting} requests are waiting`);
    const jobId = randomUUID();
    const secret = randomBytes(24).toString('base64url');
    const requestedAt = Date.now();
    // Registered before the job exists: a free node may take it and announce before add() returns.
    const rider = openRide(jobId, requestedAt, socket, randomUUID());
    socket.data.jobId = jobId;
    try {
      await timed(redis.set(claimKey(s, jobId), rider.claim, 'PX', CLAIM_TTL_MS), 'claim the ride');
      await timed(queue.add('ride', { secretHash: sha256(secret), requestedAt }, { jobId, removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED }), 'add the job');
    } catch (err) {
      forget(rider);
      socket.data.jobId = null;
      queue.remove(jobId).catch(() => undefined); // in case the add went through after the timeout
      return fail('queue_unavailable', messageOf(err));
    }
    metrics.requested();
    record({ kind: 'requested', t: Date.now(), jobId });
    return { ok: true, jobId, secret };
  }

  async function resumeRide(socket: GatewaySocket, resume: unknown): Promise<Result<RideGrant>> {
    if (!isPlainObject(resume) || typeof resume.jobId !== 'string' || typeof resume.secret !== 'string' || resume.jobId.length > MAX_ID_LENGTH || resume.secret.length > MAX_ID_LENGTH) {
      return fail('bad_request', 'resume takes { jobId, secret }');
    }
    const { jobId, secret } = resume as { jobId: string; secret: string };
    let state: string;
    let attempt: number;
    let requestedAt: number;
    try {
      const job = await timed(queue.getJob(jobId), 'read the job');
      if (!job || typeof job.data?.secretHash !== 'string') return fail('no_session', 'no such ride (it ended or was removed)');
      if (!sameHex(sha256(secret), job.data.secretHash)) return fail('unauthorized', 'wrong ride secret');
      state = await timed(job.getState(), 'read the job state');
      attempt = job.attemptsStarted;
      requestedAt = job.data.requestedAt;
    } catch (err) {
      return fail('queue_unavailable', messageOf(err));
    }
    if (state === 'completed' || state === 'failed' || state === 'unknown') return fail('no_session', 'the ride has ended');
    const claim = randomUUID();
    try {
      await timed(redis.set(claimKey(s, jobId), claim, 'PX', CLAIM_TTL_MS), 'claim the ride');
    } catch (err) {
      return fail('queue_unavailable', messageOf(err));
    }
    let rider = riders.get(jobId);
    if (rider) {
      if (rider.socket && rider.socket !== socket) rider.socket.data.jobId = null;
      rider.socket = socket;
      rider.claim = claim;
      rider.actor.send({ type: 'client.back' });
    } else {
      rider = openRide(jobId, requestedAt, socket, claim, state === 'active' ? { attempt } : undefined);
    }
    socket.data.jobId = jobId;
    countRiders();
    log.info({ jobId, state: phaseOf(rider) }, 'gateway: ride resumed');
    return { ok: true, jobId, secret };
  }

  async function cancelRide(socket: GatewaySocket): Promise<Result> {
    const rider = socket.data.jobId ? riders.get(socket.data.jobId) : undefined;
    if (!rider || rider.socket !== socket) return fail('no_session', 'this connection has no ride');
    if (!inLine(rider)) return fail('bad_request', 'the ride is assigned: stop the session on the node instead');
    const away = unreachable();
    if (away) return away;
    let removed: number;
    try {
      removed = await timed(queue.remove(rider.jobId), 'remove the job');
    } catch (err) {
      return fail('queue_unavailable', messageOf(err));
    }
    if (removed !== 1) return fail('bad_request', 'a node has just taken the ride');
    rider.actor.send({ type: 'ride.ended', reason: 'cancelled' });
    return { ok: true };
  }


  // ---- HTTP and Socket.IO ----
  async function readiness(): Promise<Readiness> {
    const h = await health();
    if (h.status !== 'ok' || !h.nodes) return { ready: false, reason: h.error ?? 'Redis unreachable' };
    const live = h.nodes.total - h.nodes.draining;
    if (live < s.minNodes) return { ready: false, reason: `${live} live node(s) (draining ones not counted); min-nodes is ${s.minNodes}` };
    return { ready: true };
  }

  async function health(): Promise<GatewayHealth> {
    const w = [...riders.values()].filter(inLine).length;
    const base = { redis: link.status(), clients: { waiting: w, assigned: riders.size - w }, ...totals };
    if (!link.up) return { status: 'degraded', queue: null, nodes: null, ...base, error: link.status().reason ?? 'Redis unreachable' };
    try {
      const snap = await snapshot();
      const count = (state: string): number => snap.nodes.filter((n) => n.state === state).length;
      const now = Date.now();
      return {
        status: 'ok',
        queue: { name: s.queue, waiting: snap.waiting, active: snap.active },
        nodes: {
          total: snap.nodes.length,
          free: count('free'),
          assigned: count('assigned'),
          busy: count('busy'),
          draining: count('draining'),
          gone: snap.gone.length,
          list: snap.nodes.map((n) => ({
            id: n.id,
            url: n.url,
            state: n.state,
            ageMs: now - n.at,
            sessions: n.sessions,
            ride: n.ride ?? null,
            leaseAgeMs: n.leaseAgeMs ?? null,
            fences: n.fences ?? 0,
            refusedCompletions: n.refusedCompletions ?? 0,
          })),
          goneList: snap.gone,
        },
        fences: [...snap.nodes, ...snap.gone].reduce((sum, n) => sum + (n.fences ?? 0), 0),
        refusedCompletions: [...snap.nodes, ...snap.gone].reduce((sum, n) => sum + (n.refusedCompletions ?? 0), 0),
        ...base,
      };
    } catch (err) {
      return { status: 'degraded', queue: null, nodes: null, ...base, error: messageOf(err) };
    }
  }

  async function fleetView(): Promise<FleetView> {
    const h = await health();
    const now = Date.now();
    const rides = [...riders.values()].map((r) => {
      const snap = r.actor.getSnapshot();
      const c = snap.context;
      const line = inLine(r);
      return {
        jobId: r.jobId,
        phase: ridePhaseOf(snap),
        node: c.assignment?.node ?? null,
        attempt: c.attempt,
        position: line ? positions.positionOf(r.jobId) : null,
        waitingMs: line ? now - (c.requeuedAt ?? c.requestedAt) : 0,
        requeues: c.requeues,
      };
    });
    return {
      t: now,
      redis: h.redis,
      queue: h.queue ? { waiting: h.queue.waiting, active: h.queue.active } : null,
      nodes: h.nodes?.list ?? [],
      gone: h.nodes?.goneList ?? [],
      rides,
      counts: { assignments: h.assignments, reassignments: h.reassignments, requeues: h.requeues, fences: h.fences ?? 0, refusedCompletions: h.refusedCompletions ?? 0 },
      history: [...history].reverse().map((r) => ({ t: r.t, kind: r.kind, jobId: r.jobId, text: describeRecord(r) })),
    };
  }

  // The fleet page's live feed: server-sent events, one fleet view per change (coalesced).
  const viewers = new Set<ServerResponse>();
  let pushing = false;
  let pushAgain = false;
  const pushView = (): void => {
    if (viewers.size === 0) return;
    if (pushing) {
      pushAgain = true;
      return;
    }
    pushing = true;
    fleetView()
      .then((v) => {
        const data = `data: ${JSON.stringify(v)}\n\n`;
        for (const res of viewers) res.write(data);
      })
      .catch((err: unknown) => log.warn({ err: messageOf(err) }, 'gateway: building the fleet view failed'))
      .finally(() => {
        pushing = false;
        if (pushAgain) {
          pushAgain = false;
          pushView();
        }
      });
  };
  const pageTimer = setInterval(pushView, PAGE_REFRESH_MS);
  pageTimer.unref();
  records.on('record', () => pushView());
  link.onChange(() => pushView());

  const json = (res: ServerResponse, status: number, value: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(JSON.stringify(value));
  };
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: errorValue('bad_request', 'only GET') });
    const done = (p: Promise<void>): void => {
      p.catch((err: unknown) => {
        log.error({ err, path }, 'gateway: http handler failed');
        if (!res.headersSent) json(res, 500, { error: errorValue('internal') });
      });
    };
    if (path === '/') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
      });
      return void res.end(req.method === 'HEAD' ? undefined : FLEET_PAGE_HTML);
    }
    if (path === '/favicon.ico') return void res.writeHead(204).end(); // browsers ask; the page has none
    if (path === '/fleet/events') {
      if (viewers.size >= MAX_PAGE_VIEWERS) return json(res, 503, { error: errorValue('too_many_connections', `${MAX_PAGE_VIEWERS} fleet page viewers`) });
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      viewers.add(res);
      req.on('close', () => viewers.delete(res));
      return pushView();
    }
    if (path === '/health') return done(health().then((h) => json(res, 200, h)));
    if (path === '/ready') return done(readiness().then((r) => json(res, r.ready ? 200 : 503, r)));
    if (path === '/metrics') return done(metrics.registry.metrics().then((body) => {
      res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
      res.end(body);
    }));
    json(res, 404, { error: errorValue('bad_request', `no route ${String(path).slice(0, 64)}`) });
  });

  const io: GatewayIo = new Server(http, {
    // Polling first and then upgraded (socket.io-client's and python-socketio's default), or
    // websocket at once (FleetClient): a waiting client costs one idle connection either way.
    transports: ['polling', 'websocket'],
    perMessageDeflate: false,
    httpCompression: false,
    serveClient: false,
    maxHttpBufferSize: 16 * 1024, // requests are a few hundred bytes
    cors: s.corsOrigins.length > 0 ? { origin: [...s.corsOrigins] } : undefined,
    allowRequest: originCheck(s.corsOrigins, log),
  });
  io.use((socket, next) => {
    if (s.authToken && !presentsSecret(socket, s.authToken)) return next(handshakeError('unauthorized'));
    if (io.engine.clientsCount > s.maxConnections) return next(handshakeError('too_many_connections', `limit ${s.maxConnections}`));
    next();
  });

  io.on('connection', (socket: GatewaySocket) => {
    socket.data.jobId = null;
    const bucket = new TokenBucket(s.requestsPerSecond, s.requestsPerSecond * 2);
    socket.onAny((event: string) => {
      if (!(GATEWAY_CLIENT_EVENTS as readonly string[]).includes(event)) log.debug({ event: String(event).slice(0, 64) }, 'gateway: unknown event ignored');
    });
    const handle = <T extends object>(event: keyof GatewayClientToServer, fn: (req: unknown) => Promise<Result<T>>): void => {
      socket.on(event, ((req: unknown, ack: unknown) => {
        if (typeof req === 'function' && ack === undefined) [req, ack] = [undefined, req];
        if (typeof ack !== 'function') return;
        const reply = (r: Result<T> | Result): void => {
          if (!r.ok) log.info({ event, code: r.error.code }, 'gateway: request refused');
          try {
            (ack as (r: Result<T> | Result) => void)(r);
          } catch (err) {
            log.warn({ err: messageOf(err) }, 'gateway: acknowledgement failed');
          }
        };
        if (!bucket.take()) return reply(fail('rate_limited', `more than ${s.requestsPerSecond} requests/s`));
        fn(req).then(reply, (err: unknown) => {
          log.error({ err, event }, 'gateway: request handler threw');
          reply(fail('internal'));
        });
      }) as never);
    };
    handle('ride:request', (req) => requestRide(socket, req));
    handle('ride:cancel', () => cancelRide(socket));
    socket.on('disconnect', () => {
      const rider = socket.data.jobId ? riders.get(socket.data.jobId) : undefined;
      if (!rider || rider.socket !== socket) return;
      rider.socket = null;
      rider.actor.send({ type: 'client.left' });
    });
  });

  // Listen at once, Redis or not: /ready tells a load balancer whether to send clients here.
  const { url, port } = await listenOn(http, s.host, s.port);
  log.info({ url, queue: s.queue, redis: link.status().state }, `gateway listening on ${url}`);

  return {
    url,
    port,
    http,
    io,
    metrics,
    health,
    readiness,
    connected,
    on: (event, fn) => records.on(event, fn),
    async close() {
      closing = true;
      positions.close();
      clearInterval(pageTimer);
      for (const res of viewers) res.end(); // an open event stream would hold the HTTP server open
      viewers.clear();
      for (const r of riders.values()) r.actor.stop();
      riders.clear();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      // A graceful QUIT waits for a Redis that may be away: bounded, then the connections are cut.
      const ev: QueueEvents | null = events;
      const graceful = Promise.allSettled([ev?.close(), queue.close()]);
      await withTimeout(graceful, CLOSE_TIMEOUT_MS, 'close the queue connections').catch(async () => {
        log.warn('gateway: Redis did not answer the close; disconnecting');
        await withTimeout(Promise.allSettled([ev?.disconnect(), queue.disconnect()]), CLOSE_TIMEOUT_MS, 'disconnect').catch(() => undefined);
      });
      redis.disconnect();
    },
  };
}

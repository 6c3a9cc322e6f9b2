/**
 * The fleet gateway: one endpoint in front of many nodes. Stateless (any number of replicas
 * behind a load balancer): everything that must survive it is in Redis.
 *
 * A client connects (Socket.IO: polling upgraded to a websocket, or a websocket at once) and
 * asks for a ride; the gateway adds a BullMQ job and from then on pushes the client its place
 * in line whenever it changes, then the
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
 *
 * This file wires the parts: the rides and their charts (rides.ts), the HTTP side and the fleet
 * page (gateway-http.ts, page.ts), the record (records.ts), the Redis link (redis-link.ts).
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { Queue, QueueEvents } from 'bullmq';
import { pino, type Logger } from 'pino';
import { Server } from 'socket.io';
import { fail, type Result } from '../errors.ts';
import { originCheck } from '../transport/handshake.ts';
import { admissionMiddleware } from '../transport/admission.ts';
import { SubjectLimits } from '../transport/subject-limits.ts';
import { Access, roleRefusal } from '../auth/access.ts';
import { TokenBucket } from '../transport/rate-limit.ts';
import { isPlainObject } from '../transport/validate.ts';
import { ConnectionSlots } from '../transport/connection-slots.ts';
import { extraArgumentsMessage, splitAck } from '../transport/request-args.ts';
import { listenOn } from '../util/listen.ts';
import { messageOf, withTimeout } from './deadline.ts';
import { GATEWAY_CLIENT_EVENTS, type GatewayClientToServer, type RideGrant, type RideJobData, type RideResult } from './events.ts';
import { createGatewayHttp } from './gateway-http.ts';
import { createGatewayMetrics, type FleetSnapshot, type GatewayMetrics } from './metrics.ts';
import { claimKey, connectionOf, DEFAULT_GATEWAY, registryKey, type GatewaySettings } from './options.ts';
import type { FleetView } from './page.ts';
import { describeRecord, GatewayRecords, type GatewayRecord } from './records.ts';
import { RedisLink, type LinkStatus } from './redis-link.ts';
import { NodeRegistry, openRedis, type GoneNode } from './registry.ts';
import { runtimeStateIdsOfPhase } from '../machines/chart-graph.ts';
import { PHASES, type Phase } from '../machines/phase.ts';

const isPhase = (p: unknown): p is Phase => typeof p === 'string' && (PHASES as readonly string[]).includes(p);

import { Rides, type GatewayIo, type GatewaySocket } from './rides.ts';
export type { GatewayIo } from './rides.ts';
export type { GatewayRecord } from './records.ts';

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
    readonly list: readonly { id: string; url: string; state: string; ageMs: number; sessions: number; ride: string | null; leaseAgeMs: number | null; fences: number; refusedCompletions: number; chart: readonly string[]; runtimeChart: readonly string[] }[];
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
/** Events the fleet page lists. */
const HISTORY = 30;

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
  const records = new GatewayRecords(HISTORY, (err) => log.error({ err }, 'gateway: record listener threw'));
  const record = (r: GatewayRecord): void => records.add(r);
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
  const rides = new Rides({ settings: s, queue, redis, registry, metrics, log, record, timed, nodesChanged: () => (cached = null) });
  const { totals } = rides;

  function openEvents(): QueueEvents {
    const events = new QueueEvents(s.queue, { connection, prefix: s.prefix });
    events.on('error', (err) => log.warn({ err: messageOf(err) }, 'gateway: queue events error'));
    rides.listen(events);
    return events;
  }

  // ---- client requests ----
  async function requestRide(socket: GatewaySocket, req: unknown): Promise<Result<RideGrant>> {
    if (!isPlainObject(req)) return fail('bad_request', 'ride:request takes an object');
    if (socket.data.jobId && rides.has(socket.data.jobId)) return fail('bad_request', 'this connection already has a ride');
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
    const sub = socket.data.principal.sub;
    // Registered before the job exists: a free node may take it and announce before add() returns.
    const rider = rides.open(jobId, requestedAt, socket, randomUUID());
    socket.data.jobId = jobId;
    try {
      await timed(redis.set(claimKey(s, jobId), rider.claim, 'PX', CLAIM_TTL_MS), 'claim the ride');
      await timed(queue.add('ride', { secretHash: sha256(secret), requestedAt, ...(sub !== null ? { sub } : {}) }, { jobId, removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED }), 'add the job');
    } catch (err) {
      rides.forget(rider);
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
      // A ride belongs to its user: a token of another `sub` may not take it over, even with its secret.
      const sub = socket.data.principal.sub;
      if (job.data.sub !== undefined && sub !== null && sub !== job.data.sub) return fail('not_owner', 'the ride belongs to another user');
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
    log.info({ jobId, state: rides.phaseOf(rider) }, 'gateway: ride resumed');
    return { ok: true, jobId, secret };
  }

  async function cancelRide(socket: GatewaySocket): Promise<Result> {
    const rider = socket.data.jobId ? rides.get(socket.data.jobId) : undefined;
    if (!rider || rider.socket !== socket) return fail('no_session', 'this connection has no ride');
    if (!rides.inLine(rider)) return fail('bad_request', 'the ride is assigned: stop the session on the node instead');
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
    const base = { redis: link.status(), clients: rides.counts(), ...totals };
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
            chart: n.chart ?? [],
            // A node older than its runtimeChart field reports only its phase.
            runtimeChart: n.runtimeChart ?? (isPhase(n.phase) ? runtimeStateIdsOfPhase(n.phase) : []),
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
    return {
      t: now,
      redis: h.redis,
      queue: h.queue ? { waiting: h.queue.waiting, active: h.queue.active } : null,
      nodes: h.nodes?.list ?? [],
      gone: h.nodes?.goneList ?? [],
      rides: rides.views(now),
      counts: { assignments: h.assignments, reassignments: h.reassignments, requeues: h.requeues, fences: h.fences ?? 0, refusedCompletions: h.refusedCompletions ?? 0 },
      history: records.history().map((r) => ({ t: r.t, kind: r.kind, jobId: r.jobId, text: describeRecord(r) })),
    };
  }

  const web = createGatewayHttp({ health, readiness, metrics: metrics.registry, fleetView, log });
  const http = web.server;
  records.on(() => web.changed());
  link.onChange(() => web.changed());

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
  const slots = new ConnectionSlots(s.maxConnections);
  const subjects = new SubjectLimits({ maxConnections: s.maxConnectionsPerSub, requestsPerSecond: s.requestsPerSecondPerSub, requestBurst: s.requestsPerSecondPerSub * 2 });
  // The nodes' check (src/transport/admission.ts): the same tokens, the same codes.
  const access = new Access({ ...(s.authToken ? { authToken: s.authToken } : {}), ...(s.tokens ? { verifier: s.tokens } : {}) });
  io.use(admissionMiddleware({ access, slots, subjects, log }));

  io.on('connection', (socket: GatewaySocket) => {
    socket.data.jobId = null;
    const bucket = new TokenBucket(s.requestsPerSecond, s.requestsPerSecond * 2);
    socket.onAny((event: string) => {
      if (!(GATEWAY_CLIENT_EVENTS as readonly string[]).includes(event)) log.debug({ event: String(event).slice(0, 64) }, 'gateway: unknown event ignored');
    });
    const handle = <T extends object>(event: keyof GatewayClientToServer, fn: (req: unknown) => Promise<Result<T>>): void => {
      socket.on(event, ((...args: unknown[]) => {
        const { ack, payload } = splitAck(args);
        if (!ack) return;
        const reply = (r: Result<T> | Result): void => {
          if (!r.ok) log.info({ event, code: r.error.code }, 'gateway: request refused');
          try {
            ack(r as Result);
          } catch (err) {
            log.warn({ err: messageOf(err) }, 'gateway: acknowledgement failed');
          }
        };
        // Riding is playing: a spectator or operator token may connect, not queue.
        const principal = socket.data.principal;
        const role = roleRefusal(principal, 'play');
        if (role) return reply(role);
        if (principal.sub !== null && !subjects.take(principal.sub)) return reply(fail('rate_limited', `more than ${s.requestsPerSecondPerSub} requests/s for this user`));
        if (!bucket.take()) return reply(fail('rate_limited', `more than ${s.requestsPerSecond} requests/s`));
        if (payload.length > 1) return reply(fail('bad_request', extraArgumentsMessage(event, 1, payload.length)));
        fn(payload[0]).then(reply, (err: unknown) => {
          log.error({ err, event }, 'gateway: request handler threw');
          reply(fail('internal'));
        });
      }) as never);
    };
    handle('ride:request', (req) => requestRide(socket, req));
    handle('ride:cancel', () => cancelRide(socket));
    socket.on('disconnect', () => {
      const rider = socket.data.jobId ? rides.get(socket.data.jobId) : undefined;
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
    on: (_event, fn) => records.on(fn),
    async close() {
      closing = true;
      rides.close();
      web.close();
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

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
 * This file wires the parts: the connections to Redis and their link (gateway-links.ts,
 * redis-link.ts), the rides and their charts (rides.ts), the answers to ride requests
 * (ride-desk.ts), the Socket.IO side (gateway-sockets.ts), health, readiness and the fleet's
 * view (gateway-status.ts), the HTTP side and the fleet page (gateway-http.ts, page-feed.ts,
 * page.ts), the record (records.ts).
 */
import type { Server as HttpServer } from 'node:http';
import { pino, type Logger } from 'pino';
import { createGatewayHttp } from './gateway-http.ts';
import { GatewayLinks } from './gateway-links.ts';
import { createGatewayIo } from './gateway-sockets.ts';
import { FleetReads, fleetViewOf, healthOf, readinessOf, type GatewayHealth, type Readiness, type StatusSources } from './gateway-status.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { DEFAULT_GATEWAY, type GatewaySettings } from './options.ts';
import { GatewayRecords, type GatewayRecord } from './records.ts';
import { RideDesk } from './ride-desk.ts';
import { Rides, type GatewayIo } from './rides.ts';
import { listenOn } from '../util/listen.ts';

export type { GatewayIo } from './rides.ts';
export type { GatewayRecord } from './records.ts';
export type { GatewayHealth, Readiness } from './gateway-status.ts';

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

export type GatewayOptions = Partial<GatewaySettings> & Pick<GatewaySettings, 'redisUrl'> & { readonly logger?: Logger };

/** Events the fleet page lists. */
const HISTORY = 30;

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const s: GatewaySettings = { ...DEFAULT_GATEWAY, ...options };
  const log = (options.logger ?? pino({ level: process.env.FRAMEHOST_LOG_LEVEL ?? 'info' })).child({ component: 'gateway' });
  // The queue events exist only once Redis answers, and the rides follow the jobs by them.
  const links = new GatewayLinks(s, log, (events) => rides.listen(events));
  const { queue, redis, registry, link } = links;
  const records = new GatewayRecords(HISTORY, (err) => log.error({ err }, 'gateway: record listener threw'));
  const record = (r: GatewayRecord): void => records.add(r);
  const reads = new FleetReads(s, queue, registry);
  const metrics = createGatewayMetrics(() => reads.read());
  const timed = <T>(p: Promise<T>, what: string): Promise<T> => links.timed(p, what);
  const rides = new Rides({ settings: s, queue, redis, registry, metrics, log, record, timed, nodesChanged: () => reads.forget() });
  const desk = new RideDesk({ settings: s, links, rides, metrics, record, log });

  const status: StatusSources = { settings: s, link, reads, rides, records };
  const health = (): Promise<GatewayHealth> => healthOf(status);
  const readiness = (): Promise<Readiness> => readinessOf(status);
  const web = createGatewayHttp({ health, readiness, metrics: metrics.registry, fleetView: () => fleetViewOf(status), log });
  const http = web.server;
  records.on(() => web.changed());
  link.onChange(() => web.changed());
  const io = createGatewayIo(http, { settings: s, desk, rides, log });

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
    connected: links.connected,
    on: (_event, fn) => records.on(fn),
    async close() {
      links.stopOpening();
      rides.close();
      web.close();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      await links.close();
    },
  };
}

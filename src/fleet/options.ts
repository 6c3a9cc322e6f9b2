/**
 * Fleet settings: the queue both sides share, the lease a node holds on its user, and the
 * gateway's and the node's own limits. Every default is commented with why it is what it is;
 * docs/fleet.md explains what the lease and stall settings trade.
 */
import type { ConnectionOptions } from 'bullmq';
import type { TokenVerifier } from '../auth/tokens.ts';

/** What the gateway and every node must agree on: where the queue lives. */
export interface QueueSettings {
  /** Redis URL: `redis://[user:pass@]host:port[/db]`, `rediss://` (TLS), or `redis-sentinel://…` (see sentinelOptionsOf). */
  readonly redisUrl: string;
  /** BullMQ queue name; every node and gateway of one fleet uses the same. */
  readonly queue: string;
  /** BullMQ key prefix, so a fleet can share a Redis with other BullMQ users. */
  readonly prefix: string;
}

export const DEFAULT_QUEUE: Omit<QueueSettings, 'redisUrl'> = {
  queue: 'rides',
  prefix: 'framehost',
};

/**
 * The lease: a node's hold on one user is the BullMQ job lock, which expires unless renewed.
 * A dead or frozen node's user waits at most about `leaseMs + stalledIntervalMs` before another
 * node gets the job; a shorter lease reassigns faster but costs more Redis traffic and fences a
 * node that merely stalls (a long GC pause, a swapped-out process) sooner.
 */
export interface LeaseSettings {
  /** BullMQ `lockDuration`: how long a node holds its user without renewing. */
  readonly leaseMs: number;
  /** How often the node renews its lock; several renewals per lease, so one slow round trip never loses it. */
  readonly renewEveryMs: number;
  /**
   * The node ends its session once its last successful renewal is older than
   * `leaseMs - fenceMarginMs`: the margin covers the node's own timer lateness, so it stops
   * before the lock can have expired in Redis and another node can have taken the job.
   */
  readonly fenceMarginMs: number;
  /** BullMQ `stalledInterval`: how often nodes look for jobs whose lock expired. */
  readonly stalledIntervalMs: number;
  /** BullMQ `maxStalledCount`: a job requeued more often than this fails (`node_lost`). */
  readonly maxStalledCount: number;
}

/** Lease defaults from `leaseMs`: renew four times per lease, fence a fifth before its end. */
export function leaseSettings(leaseMs: number, overrides: Partial<LeaseSettings> = {}): LeaseSettings {
  return {
    leaseMs,
    renewEveryMs: Math.max(50, Math.floor(leaseMs / 4)),
    fenceMarginMs: Math.max(50, Math.floor(leaseMs / 5)),
    stalledIntervalMs: DEFAULT_LEASE.stalledIntervalMs,
    maxStalledCount: DEFAULT_LEASE.maxStalledCount,
    ...overrides,
  };
}

export const DEFAULT_LEASE: LeaseSettings = {
  // BullMQ's 30 s lock plus its 30 s stall check leave a dead node's user stranded about a
  // minute (MEASURED.md); 5 s + 2 s bring that under 10 s at ~1 renewal/s per busy node.
  leaseMs: 5_000,
  renewEveryMs: 1_250,
  fenceMarginMs: 1_000,
  stalledIntervalMs: 2_000,
  // One requeue may be bad luck (a node killed by its host); a job that kills two nodes in a
  // row is more likely the cause than the victim, so the third stall fails it.
  maxStalledCount: 2,
};

export interface NodeSettings extends QueueSettings, LeaseSettings {
  /** The URL clients use to reach this node (what the gateway hands out). */
  readonly publicUrl: string;
  /** HMAC key for tickets; the same on every node of the fleet. */
  readonly secret: string;
  /** Unique per node process; named in tickets and in the node registry. */
  readonly nodeId: string;
  /** An assigned user who has not started their session by then releases the node (`no_show`). */
  readonly noShowMs: number;
  /** At SIGTERM the running session may go on this long; then it is stopped with reason `shutdown`. */
  readonly drainDeadlineMs: number;
  /** A free node also polls the queue this often, in case it missed a `waiting` event. */
  readonly pollMs: number;
  /** How often the node writes its state to the registry the gateway reads. */
  readonly heartbeatMs: number;
  /** Bound on every Redis call the node awaits (a hung call must not hang the node). */
  readonly redisTimeoutMs: number;
}

export const DEFAULT_NODE: Omit<NodeSettings, 'redisUrl' | 'publicUrl' | 'secret' | 'nodeId'> = {
  ...DEFAULT_QUEUE,
  ...DEFAULT_LEASE,
  noShowMs: 15_000, // a browser opening a websocket to a new host takes well under a second; 15 s covers a slow phone
  drainDeadlineMs: 300_000, // rolling deploys wait for rides up to 5 minutes, then cut them (reason `shutdown`)
  pollMs: 1_000, // events wake a free node at once; the poll only catches what an event missed
  heartbeatMs: 1_000,
  redisTimeoutMs: 3_000,
};

export interface GatewaySettings extends QueueSettings {
  readonly host: string;
  readonly port: number;
  /** A waiting client that disconnects keeps its place this long; then its job is removed. */
  readonly reconnectGraceMs: number;
  /** Positions are recomputed at most this often (one LRANGE of the wait list each time). */
  readonly positionDebounceMs: number;
  /** …and at least this often while this gateway has waiting clients (in case an event was missed). */
  readonly positionRefreshMs: number;
  /** Waiting jobs in the whole queue past which new requests are refused with `queue_full`. */
  readonly maxQueue: number;
  /** Concurrent Socket.IO connections to this gateway. */
  readonly maxConnections: number;
  /** Requests per second per connection (ride:request, ride:cancel). */
  readonly requestsPerSecond: number;
  /** Bound on every Redis call a client request waits for. */
  readonly redisTimeoutMs: number;
  /** A node whose registry entry is older than this counts as gone. */
  readonly nodeStaleMs: number;
  /** A gone node is listed (with when and why) this long, then pruned from the registry. */
  readonly nodeGoneKeepMs: number;
  /** Optional: the fleet's ticket secret; when set, the gateway forwards only tickets that verify. */
  readonly secret?: string;
  /** Shared secret clients present at the handshake (`auth.token`; the LAN's simple mode); off when unset. */
  readonly authToken?: string;
  /** Access tokens (src/auth), the same the nodes take: a `player` token rides, its `sub` goes into the ride. */
  readonly tokens?: TokenVerifier;
  /** Connections of one token `sub` at once, and its requests per second over all of them. */
  readonly maxConnectionsPerSub: number;
  readonly requestsPerSecondPerSub: number;
  /** Browser origins allowed besides the gateway's own. */
  readonly corsOrigins: readonly string[];
  /** `/ready` answers 503 while fewer nodes than this are live (not draining, not gone). */
  readonly minNodes: number;
  /** An assignment whose session has not begun by then is shown overdue (the nodes' `--no-show`). */
  readonly noShowMs: number;
}

export const DEFAULT_GATEWAY: Omit<GatewaySettings, 'redisUrl'> = {
  ...DEFAULT_QUEUE,
  host: '127.0.0.1',
  port: 3000,
  reconnectGraceMs: 5_000, // a phone switching from Wi-Fi to cellular reconnects in a second or two
  positionDebounceMs: 100, // one LRANGE of 10,000 ids costs ~10 ms: at most 10 a second per gateway
  positionRefreshMs: 2_000,
  maxQueue: 100_000,
  maxConnections: 10_000, // a waiting client costs one idle websocket and a few hundred bytes
  requestsPerSecond: 5, // a person requests a ride, not a stream of them
  maxConnectionsPerSub: 8, // as the nodes': a few tabs and devices of one person
  requestsPerSecondPerSub: 10, // two connections' worth
  redisTimeoutMs: 3_000,
  nodeStaleMs: 5_000, // five missed heartbeats
  nodeGoneKeepMs: 600_000, // ten minutes: long enough to see what happened, short enough not to pile up
  corsOrigins: [],
  minNodes: 0, // an empty fleet still queues its users: ready unless the operator says otherwise
  noShowMs: 15_000, // the nodes' default
};

/** ioredis options of a Sentinel URL, the production setup (docs/fleet.md). */
export interface SentinelOptions {
  readonly sentinels: { host: string; port: number }[];
  readonly name: string;
  readonly password?: string;
  readonly sentinelPassword?: string;
  readonly db?: number;
}

/**
 * `redis-sentinel://[:password@]host1:26379,host2:26379/master[/db]`: the Sentinels to ask and
 * the master's name; the password is the master's and the Sentinels' alike. Null for any other
 * URL (`redis://`, `rediss://`), which ioredis parses itself.
 */
export function sentinelOptionsOf(redisUrl: string): SentinelOptions | null {
  if (!redisUrl.startsWith('redis-sentinel://')) return null;
  const m = /^redis-sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/@]+)\/([^/]+)(?:\/(\d+))?\/?$/.exec(redisUrl);
  if (!m) throw new Error(`not a Sentinel URL: expected redis-sentinel://[:password@]host:port[,host:port...]/master[/db]`);
  const sentinels = m[3]!.split(',').map((hp) => {
    const [host, port] = hp.split(':');
    return { host: host!, port: Number(port || 26379) };
  });
  const password = m[2] ? decodeURIComponent(m[2]) : undefined;
  return { sentinels, name: decodeURIComponent(m[4]!), ...(password ? { password, sentinelPassword: password } : {}), ...(m[5] ? { db: Number(m[5]) } : {}) };
}

/** BullMQ's connection for a Redis URL (BullMQ makes and closes its own ioredis clients from it). */
export function connectionOf(redisUrl: string): ConnectionOptions {
  return sentinelOptionsOf(redisUrl) ?? { url: redisUrl };
}

/** The registry of nodes lives beside the queue's own keys. */
export function registryKey(q: Pick<QueueSettings, 'prefix' | 'queue'>): string {
  return `${q.prefix}:${q.queue}:fleet:nodes`;
}

/** Which gateway connection currently speaks for a waiting job (reconnects may land on another replica). */
export function claimKey(q: Pick<QueueSettings, 'prefix' | 'queue'>, jobId: string): string {
  return `${q.prefix}:${q.queue}:fleet:claim:${jobId}`;
}

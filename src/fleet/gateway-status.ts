/**
 * What the gateway says about the fleet: `/health` (GatewayHealth), `/ready` (Readiness) and the
 * fleet page's view, all from one read of Redis a second at most (FleetReads).
 */
import type { Queue } from 'bullmq';
import { runtimeStateIdsOfPhase } from '../machines/chart-graph.ts';
import { PHASES, type Phase } from '../machines/phase.ts';
import { messageOf, withTimeout } from './deadline.ts';
import type { RideJobData, RideResult } from './events.ts';
import type { FleetSnapshot } from './metrics.ts';
import type { GatewaySettings } from './options.ts';
import type { FleetView } from './page.ts';
import { describeRecord, type GatewayRecords } from './records.ts';
import type { LinkStatus, RedisLink } from './redis-link.ts';
import type { GoneNode, NodeEntry, NodeRegistry } from './registry.ts';
import type { Rides } from './rides.ts';

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
    readonly list: readonly NodeHealth[];
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

/** One live node as `/health` lists it. */
export interface NodeHealth {
  readonly id: string;
  readonly url: string;
  readonly state: string;
  readonly ageMs: number;
  readonly sessions: number;
  readonly ride: string | null;
  readonly leaseAgeMs: number | null;
  readonly fences: number;
  readonly refusedCompletions: number;
  readonly chart: readonly string[];
  readonly runtimeChart: readonly string[];
}

export interface Readiness {
  readonly ready: boolean;
  readonly reason?: string;
}

/** Where the answers come from. */
export interface StatusSources {
  readonly settings: GatewaySettings;
  readonly link: RedisLink;
  readonly reads: FleetReads;
  readonly rides: Rides;
  readonly records: GatewayRecords;
}

/** One Redis read of the fleet per second at most, however many scrapes and health probes come. */
export class FleetReads {
  private cached: { at: number; value: Promise<FleetSnapshot> } | null = null;

  constructor(
    private readonly s: Pick<GatewaySettings, 'redisTimeoutMs' | 'nodeStaleMs' | 'nodeGoneKeepMs'>,
    private readonly queue: Pick<Queue<RideJobData, RideResult, string>, 'getJobCounts'>,
    private readonly registry: Pick<NodeRegistry, 'list'>,
  ) {}

  read(): Promise<FleetSnapshot> {
    const now = performance.now();
    if (this.cached && now - this.cached.at < 1000) return this.cached.value;
    const value = this.readNow();
    value.catch(() => {
      if (this.cached?.value === value) this.cached = null;
    });
    this.cached = { at: now, value };
    return value;
  }

  /** A node was marked gone: the next read goes to Redis. */
  forget(): void {
    this.cached = null;
  }

  private async readNow(): Promise<FleetSnapshot> {
    const { s } = this;
    const [counts, nodes] = await Promise.all([
      withTimeout(this.queue.getJobCounts('wait', 'active'), s.redisTimeoutMs, 'count jobs'),
      withTimeout(this.registry.list(s.nodeStaleMs, s.nodeGoneKeepMs), s.redisTimeoutMs, 'read the node registry'),
    ]);
    return { waiting: counts.wait ?? 0, active: counts.active ?? 0, nodes: nodes.live, gone: nodes.gone };
  }
}

const isPhase = (p: unknown): p is Phase => typeof p === 'string' && (PHASES as readonly string[]).includes(p);

function nodeHealth(n: NodeEntry, now: number): NodeHealth {
  return {
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
  };
}

export async function healthOf(d: StatusSources): Promise<GatewayHealth> {
  const base = { redis: d.link.status(), clients: d.rides.counts(), ...d.rides.totals };
  if (!d.link.up) return { status: 'degraded', queue: null, nodes: null, ...base, error: d.link.status().reason ?? 'Redis unreachable' };
  try {
    const snap = await d.reads.read();
    const count = (state: string): number => snap.nodes.filter((n) => n.state === state).length;
    const now = Date.now();
    const all = [...snap.nodes, ...snap.gone];
    return {
      status: 'ok',
      queue: { name: d.settings.queue, waiting: snap.waiting, active: snap.active },
      nodes: {
        total: snap.nodes.length,
        free: count('free'),
        assigned: count('assigned'),
        busy: count('busy'),
        draining: count('draining'),
        gone: snap.gone.length,
        list: snap.nodes.map((n) => nodeHealth(n, now)),
        goneList: snap.gone,
      },
      fences: all.reduce((sum, n) => sum + (n.fences ?? 0), 0),
      refusedCompletions: all.reduce((sum, n) => sum + (n.refusedCompletions ?? 0), 0),
      ...base,
    };
  } catch (err) {
    return { status: 'degraded', queue: null, nodes: null, ...base, error: messageOf(err) };
  }
}

/** What `/ready` answers: ready while Redis answers (and, with `minNodes`, enough nodes are live), else why not. */
export async function readinessOf(d: StatusSources): Promise<Readiness> {
  const h = await healthOf(d);
  if (h.status !== 'ok' || !h.nodes) return { ready: false, reason: h.error ?? 'Redis unreachable' };
  const live = h.nodes.total - h.nodes.draining;
  const min = d.settings.minNodes;
  if (live < min) return { ready: false, reason: `${live} live node(s) (draining ones not counted); min-nodes is ${min}` };
  return { ready: true };
}

export async function fleetViewOf(d: StatusSources): Promise<FleetView> {
  const h = await healthOf(d);
  const now = Date.now();
  return {
    t: now,
    redis: h.redis,
    queue: h.queue ? { waiting: h.queue.waiting, active: h.queue.active } : null,
    nodes: h.nodes?.list ?? [],
    gone: h.nodes?.goneList ?? [],
    rides: d.rides.views(now),
    counts: { assignments: h.assignments, reassignments: h.reassignments, requeues: h.requeues, fences: h.fences ?? 0, refusedCompletions: h.refusedCompletions ?? 0 },
    history: d.records.history().map((r) => ({ t: r.t, kind: r.kind, jobId: r.jobId, text: describeRecord(r) })),
  };
}

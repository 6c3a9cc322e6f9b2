/**
 * The node registry: each node writes its state to one Redis hash every heartbeat; gateways
 * read it for /health and /metrics. BullMQ knows workers only as connections (CLIENT LIST), not
 * whether they are free, so the fleet keeps this itself.
 *
 * A node is gone when its entry is older than the stale bound (it died without a word: kill -9,
 * a lost host), or when a later "gone" mark says so: a gateway marks the node of a ride it saw
 * requeued at once (its lease lapsed: it died, froze or lost Redis), and a node that shuts down
 * marks itself. A node heard from after its mark (a frozen one resumed) is live again. Gone
 * nodes are listed with when and why for `goneKeepMs`, then pruned (docs/fleet.md, Health).
 */
import { Redis, type RedisOptions } from 'ioredis';
import { sentinelOptionsOf } from './options.ts';

/** A plain ioredis client for a fleet Redis URL (Sentinel URLs included). */
export function openRedis(redisUrl: string, options: RedisOptions): Redis {
  const sentinel = sentinelOptionsOf(redisUrl);
  return sentinel ? new Redis({ ...options, ...sentinel }) : new Redis(redisUrl, options);
}

/**
 * `free`: idle and taking jobs. `assigned`: holds a job, waiting for its user to arrive.
 * `busy`: a session runs or is being cleaned up. `draining`: SIGTERM, takes no new job.
 */
export type NodeState = 'free' | 'assigned' | 'busy' | 'draining';
export const NODE_STATES: readonly NodeState[] = ['free', 'assigned', 'busy', 'draining'];

export interface NodeEntry {
  readonly id: string;
  readonly url: string;
  readonly state: NodeState;
  /** When the node wrote this, ms since the epoch (its clock). */
  readonly at: number;
  /** Sessions this node has run since it started. */
  readonly sessions: number;
  /** The job it holds, if any. */
  readonly ride?: string | null;
  /** How old its lease proof was when it wrote this (ms), while it holds a job. */
  readonly leaseAgeMs?: number | null;
  /** Times it fenced itself, and completions Redis refused it, since it started. */
  readonly fences?: number;
  readonly refusedCompletions?: number;
  /** The node chart's active state ids (for the drawn chart on the gateway's /charts page). */
  readonly chart?: readonly string[];
  /** Its runtime's phase (`running`, `idle`…). */
  readonly phase?: string;
  /** The runtime chart's active state ids, every region (the watchdog, attended/orphaned): for /charts. */
  readonly runtimeChart?: readonly string[];
}

/** A node no longer live, as the operator sees it. */
export interface GoneNode {
  readonly id: string;
  readonly url: string;
  /** Its last reported state and when it reported it (ms since the epoch). */
  readonly lastState: NodeState;
  readonly lastSeen: number;
  /** When it was found gone, and why. */
  readonly goneAt: number;
  readonly why: string;
  readonly fences: number;
  readonly refusedCompletions: number;
}

interface GoneMark {
  readonly at: number;
  readonly why: string;
}

function parseJson(raw: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(raw) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A record's list of chart state ids, bounded (the record comes from Redis, written by any node). */
const stateIds = (x: unknown): string[] => (Array.isArray(x) ? x.filter((id): id is string => typeof id === 'string' && id.length <= 128).slice(0, 64) : []);

function parseEntry(raw: string): NodeEntry | null {
  const v = parseJson(raw);
  if (!v || typeof v.id !== 'string' || typeof v.url !== 'string' || typeof v.at !== 'number' || !NODE_STATES.includes(v.state as NodeState)) return null;
  const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
  return {
    id: v.id,
    url: v.url,
    state: v.state as NodeState,
    at: v.at,
    sessions: num(v.sessions) ?? 0,
    ride: typeof v.ride === 'string' ? v.ride : null,
    leaseAgeMs: num(v.leaseAgeMs) ?? null,
    fences: num(v.fences) ?? 0,
    refusedCompletions: num(v.refusedCompletions) ?? 0,
    ...(typeof v.phase === 'string' && v.phase.length <= 32 ? { phase: v.phase } : {}),
    chart: stateIds(v.chart),
    ...(Array.isArray(v.runtimeChart) ? { runtimeChart: stateIds(v.runtimeChart) } : {}),
  };
}

function parseMark(raw: string | undefined): GoneMark | null {
  const v = raw ? parseJson(raw) : null;
  return v && typeof v.at === 'number' && typeof v.why === 'string' ? { at: v.at, why: v.why } : null;
}

export class NodeRegistry {
  private readonly goneKey: string;
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
  ) {
    this.goneKey = `${key}:gone`;
  }

  async write(entry: NodeEntry): Promise<void> {
    await this.redis.hset(this.key, entry.id, JSON.stringify(entry));
  }

  /** Say a node is gone, now, and why (a gateway that saw its ride requeued; the node itself at exit). */
  async markGone(id: string, why: string, at: number = Date.now()): Promise<void> {
    await this.redis.hset(this.goneKey, id, JSON.stringify({ at, why }));
  }

  /**
   * Live nodes, and gone ones with when and why. An entry older than `staleMs` is gone since
   * `at + staleMs`; entries (and marks) gone longer than `keepMs` are pruned.
   */
  async list(staleMs: number, keepMs: number, now: number = Date.now()): Promise<{ live: NodeEntry[]; gone: GoneNode[] }> {
    const [all, marks] = await Promise.all([this.redis.hgetall(this.key), this.redis.hgetall(this.goneKey)]);
    const live: NodeEntry[] = [];
    const gone: GoneNode[] = [];
    const prune: string[] = [];
    for (const [id, raw] of Object.entries(all)) {
      const entry = parseEntry(raw);
      if (!entry) {
        prune.push(id);
        continue;
      }
      const mark = parseMark(marks[id]);
      const markedAfter = mark !== null && mark.at >= entry.at;
      if (!markedAfter && now - entry.at <= staleMs) {
        live.push(entry);
        continue;
      }
      const goneAt = markedAfter ? mark.at : entry.at + staleMs;
      const why = markedAfter ? mark.why : `no heartbeat for ${Math.round(staleMs / 1000)} s (it died or lost Redis without a word)`;
      if (now - goneAt > keepMs) prune.push(id);
      else gone.push({ id, url: entry.url, lastState: entry.state, lastSeen: entry.at, goneAt, why, fences: entry.fences ?? 0, refusedCompletions: entry.refusedCompletions ?? 0 });
    }
    const orphanMarks = Object.keys(marks).filter((id) => !(id in all) || prune.includes(id));
    if (prune.length > 0) await this.redis.hdel(this.key, ...prune);
    if (orphanMarks.length > 0) await this.redis.hdel(this.goneKey, ...orphanMarks);
    return { live: live.sort((a, b) => a.id.localeCompare(b.id)), gone: gone.sort((a, b) => b.goneAt - a.goneAt) };
  }
}

/**
 * The node registry: each node writes its state to one Redis hash every heartbeat; gateways
 * read it for /health and /metrics. BullMQ knows workers only as connections (CLIENT LIST), not
 * whether they are free, so the fleet keeps this itself. An entry older than the stale bound
 * is a node that died without saying goodbye (kill -9): it is reported as gone and pruned.
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
}

function parseEntry(raw: string): NodeEntry | null {
  try {
    const v = JSON.parse(raw) as Partial<NodeEntry>;
    if (typeof v.id !== 'string' || typeof v.url !== 'string' || typeof v.at !== 'number' || !NODE_STATES.includes(v.state as NodeState)) return null;
    return { id: v.id, url: v.url, state: v.state as NodeState, at: v.at, sessions: typeof v.sessions === 'number' ? v.sessions : 0 };
  } catch {
    return null;
  }
}

export class NodeRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
  ) {}

  async write(entry: NodeEntry): Promise<void> {
    await this.redis.hset(this.key, entry.id, JSON.stringify(entry));
  }

  async remove(id: string): Promise<void> {
    await this.redis.hdel(this.key, id);
  }

  /** Live nodes; entries older than `staleMs` are gone, and those older than ten times that are pruned. */
  async list(staleMs: number, now: number = Date.now()): Promise<{ live: NodeEntry[]; gone: number }> {
    const all = await this.redis.hgetall(this.key);
    const live: NodeEntry[] = [];
    const prune: string[] = [];
    let gone = 0;
    for (const [id, raw] of Object.entries(all)) {
      const entry = parseEntry(raw);
      const age = entry ? now - entry.at : Infinity;
      if (entry && age <= staleMs) live.push(entry);
      else {
        gone++;
        if (age > staleMs * 10) prune.push(id);
      }
    }
    if (prune.length > 0) await this.redis.hdel(this.key, ...prune);
    return { live: live.sort((a, b) => a.id.localeCompare(b.id)), gone };
  }
}

/**
 * The node registry against a real redis-server: who is live, who is gone (with when and why),
 * a frozen node that comes back, and pruning after `keepMs`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { NodeRegistry, type NodeEntry } from '../src/fleet/registry.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';

let server: RedisServer;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

const entry = (id: string, at: number, more: Partial<NodeEntry> = {}): NodeEntry => ({ id, url: `http://${id}`, state: 'free', at, sessions: 0, ...more });

describe('node registry', () => {
  it('live until stale or marked gone; gone with when and why; live again when heard from after the mark; pruned after keepMs', async () => {
    const reg = new NodeRegistry(redis, `test:${Date.now()}:nodes`);
    const now = 1_000_000;
    const STALE = 5_000;
    const KEEP = 60_000;
    await reg.write(entry('a', now - 1000, { state: 'busy', ride: 'j1', leaseAgeMs: 300, fences: 2, refusedCompletions: 1 }));
    await reg.write(entry('b', now - STALE - 1)); // silent past the stale bound
    await reg.write(entry('c', now - 500, { state: 'busy' }));
    await reg.markGone('c', 'its ride j9 was requeued', now - 200); // after its last heartbeat
    await reg.write(entry('d', now - 100));
    await reg.markGone('d', 'its ride j8 was requeued', now - 300); // before its last heartbeat: it came back
    let list = await reg.list(STALE, KEEP, now);
    expect(list.live.map((n) => n.id)).toEqual(['a', 'd']);
    expect(list.live[0]).toMatchObject({ ride: 'j1', leaseAgeMs: 300, fences: 2, refusedCompletions: 1, state: 'busy' });
    // newest first
    expect(list.gone).toEqual([
      { id: 'b', url: 'http://b', lastState: 'free', lastSeen: now - STALE - 1, goneAt: now - 1, why: expect.stringMatching(/no heartbeat for 5 s/) as unknown as string, fences: 0, refusedCompletions: 0 },
      { id: 'c', url: 'http://c', lastState: 'busy', lastSeen: now - 500, goneAt: now - 200, why: 'its ride j9 was requeued', fences: 0, refusedCompletions: 0 },
    ]);
    // Past keepMs the gone ones are pruned (entries and marks); the live ones stay.
    await reg.write(entry('a', now + KEEP));
    await reg.write(entry('d', now + KEEP));
    list = await reg.list(STALE, KEEP, now + KEEP + 1000);
    expect(list.gone).toEqual([]);
    expect(list.live.map((n) => n.id)).toEqual(['a', 'd']);
    expect(Object.keys(await redis.hgetall(`${(reg as unknown as { key: string }).key}:gone`))).toEqual(['d']); // d's mark is older than its heartbeat: kept, harmless
  });
});

/**
 * The lease on the frame path, seen from the wire: raw Socket.IO clients written from the
 * tables of docs/fleet.md (no FleetClient, which drops the old connection on `requeued` and so would
 * hide a node that keeps streaming). A busy node is frozen (SIGSTOP) past its lease, the gateway
 * requeues the ride to another node, the frozen node is resumed (SIGCONT), and the client's own
 * log must hold no frame from the frozen node after the requeue, and the command it sent to that
 * node meanwhile must be refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as ioClient, type Socket } from 'socket.io-client';
import type { Assignment, GatewayClientToServer, GatewayServerToClient, RequeueNotice } from '../src/fleet/events.ts';
import type { ClientToServerEvents, FrameMeta, ServerToClientEvents } from '../src/transport/socket/events.ts';
import type { Result } from '../src/errors.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { sleep, startFleet, until, type Fleet } from './helpers/fleet.ts';
import { recordFrames, startServer } from './helpers/server.ts';
import { fail } from '../src/errors.ts';

const LEASE_MS = 1500;
const STALL_MS = 500;

let redis: RedisServer;
let fleet: Fleet;

beforeAll(async () => {
  redis = await startRedis();
  fleet = await startFleet(redis.url, { leaseMs: LEASE_MS, stallMs: STALL_MS });
  const nodes = [fleet.startNode(), fleet.startNode()];
  await Promise.all(nodes.map((n) => n.ready()));
}, 60_000);

afterAll(async () => {
  await fleet?.close();
  await redis?.stop();
});

type NodeSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** A raw client's own log: every frame with the time it arrived and the node it came from. */
interface WireLog {
  readonly frames: { t: number; node: string; seq: number }[];
  readonly assigned: (Assignment & { t: number })[];
  readonly requeued: (RequeueNotice & { t: number })[];
  readonly ended: { t: number; node: string; reason: string }[];
}

async function ride(log: WireLog, a: Assignment): Promise<NodeSocket> {
  const node: NodeSocket = ioClient(a.url, { transports: ['websocket'], forceNew: true, reconnection: false });
  node.on('frame', (meta: FrameMeta) => log.frames.push({ t: Date.now(), node: a.node, seq: meta.seq }));
  node.on('session:ended', (e) => log.ended.push({ t: Date.now(), node: a.node, reason: e.reason }));
  const r = (await node.timeout(5000).emitWithAck('session:start', { ticket: a.ticket })) as Result;
  expect(r.ok, JSON.stringify(r)).toBe(true);
  return node;
}

describe('fleet: the lease on the frame path', () => {
  it('a node frozen past its lease sends its old user no frame after the requeue, and refuses its command', async () => {
    const log: WireLog = { frames: [], assigned: [], requeued: [], ended: [] };
    const gw: Socket<GatewayServerToClient, GatewayClientToServer> = ioClient(fleet.gateway.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    const sockets: NodeSocket[] = [];
    try {
      gw.on('assigned', (a) => log.assigned.push({ ...a, t: Date.now() }));
      gw.on('requeued', (n) => log.requeued.push({ ...n, t: Date.now() }));
      const grant = await gw.timeout(5000).emitWithAck('ride:request', {});
      expect(grant.ok).toBe(true);
      const first = await until('the first assignment', () => log.assigned[0]);
      const old = await ride(log, first);
      sockets.push(old);
      await until('frames from the first node', () => log.frames.filter((f) => f.node === first.node).length >= 5);

      const frozen = fleet.nodes.find((n) => n.id === first.node)!;
      frozen.child.signal('SIGSTOP');
      const stoppedAt = Date.now();
      let command: Promise<Result> | null = null;
      try {
        const second = await until('the reassignment', () => log.assigned[1], LEASE_MS + 2 * STALL_MS + 5000);
        expect(second.node).not.toBe(first.node);
        expect(log.requeued).toHaveLength(1);
        sockets.push(await ride(log, second));
        await until('frames from the new node', () => log.frames.filter((f) => f.node === second.node).length >= 5);
        expect(Date.now() - stoppedAt).toBeGreaterThan(LEASE_MS);
        // The raw client keeps its old connection (nothing in the protocol makes it hang up) and
        // sends the old node a command while it is frozen: it is read the moment the node wakes.
        command = old.timeout(5000).emitWithAck('session:command', { name: 'stamp', args: { x: 1, y: 1 } }) as Promise<Result>;
        await sleep(100);
      } finally {
        frozen.child.signal('SIGCONT');
      }
      const refused = await command!;
      await frozen.line('fenced', (l) => l.fleet === 'fenced' && l.jobId === first.jobId);
      await until('the old session ended on the wire', () => log.ended.find((e) => e.node === first.node));
      expect(log.ended.find((e) => e.node === first.node)?.reason).toBe('fenced');
      await sleep(500); // anything still on its way from the woken node arrives in this time

      const requeuedAt = log.requeued[0]!.t;
      const late = log.frames.filter((f) => f.node === first.node && f.t >= requeuedAt);
      expect(late, `frames from the frozen node after the requeue: ${JSON.stringify(late)}`).toHaveLength(0);
      expect(refused.ok ? 'ok' : refused.error.code).toBe('lease_lost');
      // The new node goes on streaming.
      const fresh = log.frames.filter((f) => f.node === log.assigned[1]!.node && f.t > Date.now() - 400);
      expect(fresh.length).toBeGreaterThan(0);
      // The node's own record: what the gate held back, and Redis refused the late completion.
      const rejected = await frozen.line('completion.rejected', (l) => l.fleet === 'completion.rejected' && l.jobId === first.jobId);
      expect(rejected.fenced).toBe(true);
      expect(Number(rejected.withheld)).toBeGreaterThanOrEqual(1); // at least the command
      console.log(`[fleet.lease] withheld by the gate after SIGCONT: ${String(rejected.withheld)} (frames, messages and the command); fenced ${frozen.lines().find((l) => l.fleet === 'fenced')?.why}`);
    } finally {
      for (const s of sockets) s.close();
      gw.close();
    }
  }, 45_000);
});

describe('the transport gate (what a fleet node plugs its lease into)', () => {
  it('is asked at every frame and command: closed, no frame leaves and commands get its error; open again, both flow', async () => {
    let open = true;
    let asked = 0;
    const h = await startServer({}, { gate: () => (asked++, open ? { ok: true } : fail('lease_lost', 'test')) });
    try {
      await h.rt.ready();
      const c = await h.client();
      const rec = recordFrames(c);
      await c.start();
      await until('frames', () => rec.frames.length >= 3);
      expect(asked).toBeGreaterThanOrEqual(3);
      open = false;
      await sleep(50); // a frame written before the gate closed may still be on the wire
      const shut = rec.frames.length;
      const refused = await c.request('session:command', { name: 'stamp', args: { x: 1, y: 1 } });
      expect(refused.ok ? 'ok' : refused.error.code).toBe('lease_lost');
      const askedWhileShut = asked;
      await sleep(300);
      expect(rec.frames.length).toBe(shut);
      expect(asked).toBeGreaterThan(askedWhileShut); // frames were made and held back, not absent
      open = true;
      expect((await c.request('session:command', { name: 'stamp', args: { x: 1, y: 1 } })).ok).toBe(true);
      await until('frames again', () => rec.frames.length > shut);
    } finally {
      await h.close();
    }
  }, 30_000);
  // A WebRTC track held back by the same gate: test/webrtc-suite.ts, on each sender (its viewers in
  // a child process: this file's server would otherwise load wrtc next to the room's node-datachannel).
});

/**
 * The fleet end to end: a real Redis (Debian's redis-server on a free loopback port), real
 * `framehost serve --fleet` node processes, a gateway, and fleet clients, with short leases
 * (1.5 s) so that failures show within seconds. Each describe has its own queue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { io as ioClient } from 'socket.io-client';
import { FramehostClient } from '../src/client/client.ts';
import { mintTicket } from '../src/fleet/ticket.ts';
import type { FleetClient } from '../src/fleet/client.ts';
import type { Assignment, GatewayClientToServer, GatewayServerToClient, RideEnd } from '../src/fleet/events.ts';
import type { Socket } from 'socket.io-client';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { BIN, cleanEnv, sleep, startFleet, until, type Fleet, type FleetNodeProcess } from './helpers/fleet.ts';
import { Child } from './helpers/child.ts';

const LEASE_MS = 1500;
const STALL_MS = 500;
/** Kill → reassigned: the lock lapses (≤ lease), the next stall check after that (≤ 2 checks), an assignment. */
const REASSIGN_BOUND_MS = LEASE_MS + 2 * STALL_MS + 1500;

let redis: RedisServer;
const fleets: Fleet[] = [];
const extraChildren: Child[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const c of extraChildren) c.kill();
  await Promise.allSettled(extraChildren.map((c) => c.exited));
  await Promise.allSettled(fleets.map((f) => f.close()));
  await redis?.stop();
});

async function fleetWith(nodes: number, spec: Parameters<typeof startFleet>[1] = {}): Promise<Fleet> {
  const fleet = await startFleet(redis.url, { leaseMs: LEASE_MS, stallMs: STALL_MS, ...spec });
  fleets.push(fleet);
  const started = Array.from({ length: nodes }, () => fleet.startNode());
  await Promise.all(started.map((n) => n.ready()));
  return fleet;
}

interface Trace {
  readonly positions: { t: number; position: number; grew: boolean }[];
  readonly assigned: (Assignment & { t: number })[];
  readonly sessions: { t: number; node: string; sessionId: string; attempt: number }[];
  readonly requeued: number[];
  readonly frames: { t: number; node: string; sessionId: string }[];
  readonly errors: string[];
  ended: (RideEnd & { t: number }) | null;
}

function trace(ride: FleetClient): Trace {
  const tr: Trace = { positions: [], assigned: [], sessions: [], requeued: [], frames: [], errors: [], ended: null };
  ride.on('queue', (q) => tr.positions.push({ t: Date.now(), position: q.position, grew: q.grewBecause === 'requeued' }));
  ride.on('assigned', (a) => tr.assigned.push({ ...a, t: Date.now() }));
  ride.on('session', (s) => tr.sessions.push({ t: Date.now(), node: s.node, sessionId: s.sessionId, attempt: s.attempt }));
  ride.on('requeued', () => tr.requeued.push(Date.now()));
  ride.on('ended', (e) => (tr.ended = { ...e, t: Date.now() }));
  ride.on('error', (e) => tr.errors.push(`${e.during}: ${e.error.code}`));
  ride.onFrame((f) => tr.frames.push({ t: Date.now(), node: f.node, sessionId: f.meta.sessionId }));
  return tr;
}

async function framesFrom(tr: Trace, node: string, n: number, ms = 10_000): Promise<void> {
  await until(`${n} frames from ${node}`, () => tr.frames.filter((f) => f.node === node).length >= n, ms);
}

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

function metric(text: string, name: string): number {
  const m = text.match(new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

describe('fleet: assignment, queue, tickets', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await fleetWith(2, { noShowMs: 1500 });
  }, 60_000);

  it('assigns a free node at once; the session runs there; its end is the job\'s return value', async () => {
    const ride = fleet.client();
    const tr = trace(ride);
    const session = await ride.session(10_000);
    expect(tr.assigned).toHaveLength(1);
    expect(fleet.nodes.map((n) => n.id)).toContain(session.node);
    await framesFrom(tr, session.node, 3);
    await ride.stop();
    const end = await ride.ended(10_000);
    expect(end.reason).toBe('stopped');
    const node = fleet.nodes.find((n) => n.id === session.node)!;
    const done = await node.line('job.completed', (l) => l.fleet === 'job.completed' && l.jobId === end.jobId);
    expect(done.reason).toBe('stopped');
    // The return value in Redis says how the ride ended.
    const queue = new Queue(fleet.queue, { connection: { url: redis.url }, prefix: 'framehost' });
    try {
      const job = await queue.getJob(end.jobId);
      expect(job?.returnvalue).toMatchObject({ reason: 'stopped', node: session.node, attempt: 1, sessionId: session.sessionId });
    } finally {
      await queue.close();
    }
    const health = await fleet.gateway.health();
    expect(health).toMatchObject({ status: 'ok', queue: { waiting: 0, active: 0 }, nodes: { total: 2 }, assignments: 1 });
    const text = await metricsText(fleet.gateway.url);
    expect(metric(text, 'framehost_fleet_assignments_total')).toBe(1);
    expect(metric(text, 'framehost_fleet_wait_seconds_count')).toBe(1);
    expect(text).toMatch(/^framehost_fleet_nodes\{state="free"\} [12]$/m);
    expect(metric(text, 'framehost_fleet_queue_length')).toBe(0);
  }, 30_000);

  it('with every node busy, pushes positions that count down to the assignment; a client who leaves makes room', async () => {
    const riders = [fleet.client(), fleet.client()];
    const riding = riders.map(trace);
    await Promise.all(riders.map((r) => r.session(10_000)));
    const waiting = [fleet.client(), fleet.client(), fleet.client()];
    const w = waiting.map(trace);
    // Requested one after another, so the line is in this order.
    for (const [i, tr] of w.entries()) await until(`waiter ${i} at position ${i + 1}`, () => tr.positions.at(-1)?.position === i + 1);
    // The middle one leaves (network gone); after the reconnect grace its job is removed.
    waiting[1]!.close();
    await until('the last waiter moves up to 2', () => w[2]!.positions.at(-1)?.position === 2, 5000);
    expect(fleet.records.some((r) => r.kind === 'abandoned' && r.removed)).toBe(true);
    // Rides end one after another: the first waiter, then the last, get the nodes.
    await riders[0]!.stop();
    await waiting[0]!.session(10_000);
    await until('the last waiter at the head', () => w[2]!.positions.at(-1)?.position === 1);
    await riders[1]!.stop();
    const last = await waiting[2]!.session(10_000);
    expect(fleet.nodes.map((n) => n.id)).toContain(last.node);
    // Positions only counted down, and nobody was told of a requeue.
    expect(w[2]!.positions.map((p) => p.position)).toEqual([3, 2, 1]);
    expect(w[2]!.positions.some((p) => p.grew)).toBe(false);
    expect(w[1]!.assigned).toHaveLength(0);
    await Promise.all([waiting[0]!.stop(), waiting[2]!.stop()]);
    const ends = await Promise.all([waiting[0]!.ended(), waiting[2]!.ended(), riders[0]!.ended(), riders[1]!.ended()]);
    expect(ends.map((e) => e.reason)).toEqual(['stopped', 'stopped', 'stopped', 'stopped']);
    expect(riding.every((t) => t.ended?.reason === 'stopped')).toBe(true);
  }, 45_000);

  // Issue 11: the gateway's handler took `(req, ack)` too: a stray argument was taken for the ack.
  it('answers gateway requests that carry unexpected arguments with bad_request and queues nothing', async () => {
    const raw = ioClient(fleet.gateway.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    try {
      await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
      for (const event of ['ride:request', 'ride:cancel']) {
        const r = (await raw.timeout(3000).emitWithAck(event, {}, 'x').catch(() => 'no answer')) as unknown;
        expect(r, event).toMatchObject({ ok: false, error: { code: 'bad_request' } });
      }
      expect((await fleet.gateway.health()).queue).toMatchObject({ waiting: 0 });
    } finally {
      raw.close();
    }
  });

  it('refuses a forged, expired, foreign or reused ticket with a coded error, and a user who never comes is a no_show', async () => {
    // A raw gateway client: asks for a ride, reads the assignment, and does not go.
    const raw: Socket<GatewayServerToClient, GatewayClientToServer> = ioClient(fleet.gateway.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    const assigned = new Promise<Assignment>((resolve) => raw.once('assigned', resolve));
    const ended = new Promise<RideEnd>((resolve) => raw.once('ended', resolve));
    const grant = await raw.timeout(5000).emitWithAck('ride:request', {});
    expect(grant.ok).toBe(true);
    const a = await assigned;
    const node = fleet.nodes.find((n) => n.id === a.node)!;
    const other = fleet.nodes.find((n) => n.id !== a.node)!;
    const direct = await FramehostClient.connect(node.url, { reconnection: false });
    const refusal = async (ticket: string | undefined): Promise<string> => {
      const r = await direct.request('session:start', ticket === undefined ? {} : { ticket });
      return r.ok ? 'ok' : r.error.code;
    };
    try {
      expect(await refusal(undefined)).toBe('ticket_invalid');
      expect(await refusal('ft1.forged.ticket')).toBe('ticket_invalid');
      expect(await refusal(mintTicket({ jobId: a.jobId, node: a.node, attempt: a.attempt, exp: Date.now() + 60_000 }, 'not-the-fleet-secret-at-all'))).toBe('ticket_invalid');
      expect(await refusal(mintTicket({ jobId: a.jobId, node: a.node, attempt: a.attempt, exp: Date.now() - 1 }, fleet.secret))).toBe('ticket_expired');
      expect(await refusal(mintTicket({ jobId: a.jobId, node: other.id, attempt: a.attempt, exp: Date.now() + 60_000 }, fleet.secret))).toBe('ticket_invalid');
      expect(await refusal(mintTicket({ jobId: a.jobId, node: a.node, attempt: a.attempt + 1, exp: Date.now() + 60_000 }, fleet.secret))).toBe('ticket_invalid');
      // The user never comes: the node releases itself after the no-show timeout.
      const end = await ended;
      expect(end.reason).toBe('no_show');
      await node.line('no_show', (l) => l.fleet === 'no_show' && l.jobId === a.jobId);
      // A real ride on the same node, then its ticket again: used.
      const ride = fleet.client();
      const tr = trace(ride);
      const s = await ride.session(10_000);
      const target = fleet.nodes.find((n) => n.id === s.node)!;
      const again = await FramehostClient.connect(target.url, { reconnection: false });
      try {
        const r = await again.request('session:start', { ticket: tr.assigned[0]!.ticket });
        expect(r.ok ? 'ok' : r.error.code).toBe('ticket_used');
      } finally {
        again.close();
      }
      await ride.stop();
      expect((await ride.ended()).reason).toBe('stopped');
    } finally {
      direct.close();
      raw.close();
    }
  }, 30_000);
});

describe('fleet: node failures', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await fleetWith(2);
  }, 60_000);

  it('kill -9 of a node mid-session: the user is told, the ride is reassigned within the bound, no node stays reserved', async () => {
    const ride = fleet.client();
    const tr = trace(ride);
    const first = await ride.session(10_000);
    await framesFrom(tr, first.node, 3);
    const victim = fleet.nodes.find((n) => n.id === first.node)!;
    const killedAt = Date.now();
    victim.child.kill();
    await victim.child.exited;
    await until('requeued', () => tr.requeued.length > 0, REASSIGN_BOUND_MS + 2000);
    const second = await until('a session on another node', () => tr.sessions[1], REASSIGN_BOUND_MS + 5000);
    expect(second.node).not.toBe(first.node);
    expect(second.attempt).toBe(first.attempt + 1);
    const reassignedMs = tr.assigned[1]!.t - killedAt;
    expect(reassignedMs).toBeLessThan(REASSIGN_BOUND_MS);
    await framesFrom(tr, second.node, 3);
    await ride.stop();
    expect((await ride.ended()).reason).toBe('stopped');
    // No node left reserved: nothing active, the dead node is gone from the registry, the live one is free.
    const health = await until('a settled fleet', async () => {
      const h = await fleet.gateway.health();
      return h.queue?.active === 0 && h.nodes?.free === h.nodes?.total ? h : undefined;
    }, 5000);
    expect(health.nodes?.list.map((n) => n.id)).not.toContain(victim.id);
    expect(health.reassignments).toBe(1);
    expect(metric(await metricsText(fleet.gateway.url), 'framehost_fleet_reassignments_total')).toBe(1);
  }, 45_000);

  it('SIGSTOP past the lease, then SIGCONT: the frozen node fences itself and its late completion is rejected', async () => {
    const spare = fleet.startNode();
    await spare.ready();
    const ride = fleet.client();
    const tr = trace(ride);
    const first = await ride.session(10_000);
    await framesFrom(tr, first.node, 3);
    const frozen = fleet.nodes.find((n) => n.id === first.node)!;
    frozen.child.signal('SIGSTOP');
    const stoppedAt = Date.now();
    try {
      const second = await until('a session on another node', () => tr.sessions[1], REASSIGN_BOUND_MS + 5000);
      expect(second.node).not.toBe(first.node);
      expect(tr.requeued.length).toBe(1);
      await framesFrom(tr, second.node, 3);
      // The lease runs from the last renewal, before the freeze, so the requeue can come a little
      // under LEASE_MS after it: keep the node frozen a whole lease so that the fence ends its ride.
      const frozenFor = Date.now() - stoppedAt;
      if (frozenFor <= LEASE_MS) await sleep(LEASE_MS - frozenFor + 100);
    } finally {
      frozen.child.signal('SIGCONT');
    }
    const fenced = await frozen.line('fenced', (l) => l.fleet === 'fenced' && l.jobId === first.jobId);
    expect(fenced.sinceProofMs).toBeGreaterThan(LEASE_MS - 400);
    const rejected = await frozen.line('completion.rejected', (l) => l.fleet === 'completion.rejected' && l.jobId === first.jobId);
    expect(rejected.fenced).toBe(true);
    expect(frozen.lines().some((l) => l.fleet === 'job.completed' && l.jobId === first.jobId)).toBe(false);
    // Never one user on two nodes: no frame from the frozen node after the ride moved on.
    const movedAt = tr.requeued[0]!;
    expect(tr.frames.filter((f) => f.node === first.node && f.t > movedAt)).toHaveLength(0);
    // The ride goes on where it is, and the woken node serves others again.
    await sleep(300);
    expect(tr.frames.filter((f) => f.t > Date.now() - 250).every((f) => f.node !== first.node)).toBe(true);
    await ride.stop();
    expect((await ride.ended()).reason).toBe('stopped');
    await until('the woken node free again', async () => (await fleet.gateway.health()).nodes?.list.find((n) => n.id === frozen.id)?.state === 'free', 10_000);
  }, 45_000);
});

describe('fleet: requeue order and the stall limit', () => {
  it('a requeued ride goes back to the head of the line: the positions behind it grow by one, and say why', async () => {
    const fleet = await fleetWith(2);
    const [r1, r2] = [fleet.client(), fleet.client()];
    const t1 = trace(r1);
    const s1 = await r1.session(10_000);
    await r2.session(10_000);
    const waiter = fleet.client();
    const w = trace(waiter);
    await until('the waiter at position 1', () => w.positions.at(-1)?.position === 1);
    fleet.nodes.find((n) => n.id === s1.node)!.child.kill();
    await until('the ride requeued', () => t1.requeued.length === 1, REASSIGN_BOUND_MS + 2000);
    await until('the waiter pushed back to 2', () => w.positions.at(-1)?.position === 2);
    expect(w.positions.at(-1)?.grew).toBe(true);
    // The requeued ride is served first when a node frees up, then the waiter.
    await r2.stop();
    const again = await until('the requeued ride on the freed node', () => t1.sessions[1], 10_000);
    await until('the waiter back at 1', () => w.positions.at(-1)?.position === 1);
    expect(w.positions.map((p) => p.position)).toEqual([1, 2, 1]);
    expect(w.assigned).toHaveLength(0);
    await r1.stop();
    await waiter.session(10_000);
    expect(again.attempt).toBe(2);
    await waiter.stop();
    expect((await waiter.ended()).reason).toBe('stopped');
  }, 45_000);

  it('a ride whose nodes die more often than maxStalledCount fails with node_lost (BullMQ `failed`, not `stalled`)', async () => {
    const fleet = await fleetWith(2, { maxStalled: 0 });
    const ride = fleet.client();
    const tr = trace(ride);
    const s = await ride.session(10_000);
    fleet.nodes.find((n) => n.id === s.node)!.child.kill();
    const end = await ride.ended(REASSIGN_BOUND_MS + 5000);
    expect(end).toMatchObject({ reason: 'failed', error: { code: 'node_lost' } });
    expect(tr.requeued).toHaveLength(1); // told of the requeue first, then of the failure
    const other = fleet.nodes.find((n) => n.id !== s.node)!;
    await other.line('job.failed_stalled', (l) => l.fleet === 'job.failed_stalled' && l.jobId === end.jobId);
    expect((await fleet.gateway.health()).queue).toMatchObject({ waiting: 0, active: 0 });
  }, 45_000);
});

describe('fleet: drain', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await fleetWith(1);
  }, 60_000);

  it('SIGTERM lets the running session finish, takes no job after, and exits 0; at the deadline it stops the session (shutdown)', async () => {
    const [draining] = fleet.nodes as [FleetNodeProcess];
    const ride = fleet.client();
    const tr = trace(ride);
    const s = await ride.session(10_000);
    expect(s.node).toBe(draining.id);
    const waiter = fleet.client();
    const wtr = trace(waiter);
    await until('the waiter at position 1', () => wtr.positions.at(-1)?.position === 1);
    draining.child.signal('SIGTERM');
    const began = await draining.line('drain.began', (l) => l.fleet === 'drain.began');
    // The session is not cut: frames keep coming, and it ends when its user stops it.
    const before = tr.frames.length;
    await sleep(600);
    expect(tr.frames.length).toBeGreaterThan(before);
    await ride.stop();
    expect((await ride.ended()).reason).toBe('stopped');
    expect((await draining.child.exitWithin(15_000)).code).toBe(0);
    // No job taken after the drain began, though one was waiting.
    expect(draining.lines().filter((l) => l.fleet === 'job.taken' && Number(l.take) > Number(began.takesIssued))).toHaveLength(0);
    expect(wtr.assigned).toHaveLength(0);
    // A new node with a short drain deadline takes the waiter; its drain stops the session at the deadline.
    const next = fleet.startNode({ drainDeadlineMs: 800 });
    await next.ready();
    const ws = await waiter.session(10_000);
    expect(ws.node).toBe(next.id);
    const endedOnNode = new Promise<string>((resolve) => waiter.node!.on('session:ended', (e) => resolve(e.reason)));
    next.child.signal('SIGTERM');
    expect(await endedOnNode).toBe('shutdown');
    expect((await waiter.ended()).reason).toBe('shutdown');
    expect((await next.child.exitWithin(15_000)).code).toBe(0);
    await next.line('drain.deadline', (l) => l.fleet === 'drain.deadline');
  }, 60_000);
});

describe('fleet: command line', () => {
  it('`framehost gateway` serves /health and /metrics and exits 0 on SIGTERM; `serve --fleet` without Redis is a usage error', async () => {
    const gw = new Child([BIN, 'gateway', '--redis', redis.url, '--port', '0', '--queue', 'cli-check', '--log-level', 'warn'], { env: cleanEnv() });
    extraChildren.push(gw);
    const m = await gw.waitFor('stderr', /^framehost: gateway on (http:\/\/127\.0\.0\.1:\d+)$/m);
    // It listens at once and connects to Redis behind that (test/fleet.gateway.test.ts): ready first.
    await until('the gateway ready', async () => (await fetch(`${m[1]}/ready`)).status === 200, 10_000);
    const health = (await (await fetch(`${m[1]}/health`)).json()) as { status: string; queue: { name: string; waiting: number } };
    expect(health).toMatchObject({ status: 'ok', queue: { name: 'cli-check', waiting: 0 } });
    expect(await metricsText(m[1]!)).toContain('framehost_fleet_queue_length 0');
    gw.signal('SIGTERM');
    expect((await gw.exitWithin(10_000)).code).toBe(0);
    const bad = new Child([BIN, 'serve', '--fleet', '--port', '0'], { env: cleanEnv() });
    extraChildren.push(bad);
    const exit = await bad.exitWithin(15_000);
    expect(exit.code).toBe(2);
    expect(bad.stderr).toContain('--fleet needs --redis');
  }, 30_000);
});

/**
 * `npm run bench:fleet [-- --quick] [-- --json PATH]`: the fleet's latencies on this machine.
 *
 *   assign      ride:request → assigned, with a free node (a connected gateway client)
 *   first frame FleetClient.connect(gateway) → the first frame from the node (what a user waits)
 *   kill        kill -9 of the node mid-session → the user told (requeued) → reassigned → first
 *               frame on the new node, for two lease/stall settings
 *   positions   the cost of reading positions with 10,000 waiting: one LRANGE of the wait list
 *               (what the gateway does), against one LPOS per client and BullMQ's getWaiting
 *
 * Real processes: Debian's redis-server on a free loopback port, `framehost serve --fleet`
 * nodes (demo model at 32², 30 fps), the gateway in this process.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { io as ioClient, type Socket } from 'socket.io-client';
import type { Assignment, GatewayClientToServer, GatewayServerToClient, RideEnd } from '../src/fleet/events.ts';
import { positionsOf } from '../src/fleet/positions.ts';
import { FramehostClient } from '../src/client/client.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { startFleet, sleep, until, type Fleet } from '../test/helpers/fleet.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonPath = args.includes('--json') ? args[args.indexOf('--json') + 1]! : 'bench/results-fleet.json';
const RIDES = quick ? 30 : 100;
const KILLS = quick ? 3 : 8;
const WAITING = 10_000;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const r1 = (x: number): number => Math.round(x * 10) / 10;
const summary = (xs: number[]): { n: number; p50: number; p99: number; max: number } => ({ n: xs.length, p50: r1(pct(xs, 50)), p99: r1(pct(xs, 99)), max: r1(Math.max(...xs)) });

type GatewaySocket = Socket<GatewayServerToClient, GatewayClientToServer>;

async function assignLatency(fleet: Fleet): Promise<number[]> {
  const socket: GatewaySocket = ioClient(fleet.gateway.url, { transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const out: number[] = [];
  const nodes = new Map<string, FramehostClient>();
  try {
    for (let i = 0; i < RIDES; i++) {
      const assigned = new Promise<Assignment>((r) => socket.once('assigned', r));
      const ended = new Promise<RideEnd>((r) => socket.once('ended', r));
      const t0 = performance.now();
      const grant = await socket.timeout(5000).emitWithAck('ride:request', {});
      if (!grant.ok) throw new Error(grant.error.message);
      const a = await assigned;
      out.push(performance.now() - t0);
      // Board and leave at once, so the node is free for the next request.
      let node = nodes.get(a.url);
      if (!node) nodes.set(a.url, (node = await FramehostClient.connect(a.url, { reconnection: false })));
      await node.start({ ticket: a.ticket });
      await node.stop();
      await ended;
    }
  } finally {
    socket.close();
    for (const c of nodes.values()) c.close();
  }
  return out;
}

async function firstFrameLatency(fleet: Fleet): Promise<{ firstFrame: number[]; assigned: number[] }> {
  const firstFrame: number[] = [];
  const assigned: number[] = [];
  for (let i = 0; i < RIDES; i++) {
    const t0 = performance.now();
    const ride = fleet.client();
    let tAssigned = 0;
    ride.on('assigned', () => (tAssigned = performance.now()));
    const frame = new Promise<number>((r) => {
      const off = ride.onFrame(() => {
        off();
        r(performance.now());
      });
    });
    const t1 = await frame;
    firstFrame.push(t1 - t0);
    assigned.push(tAssigned - t0);
    await ride.stop();
    await ride.ended(10_000);
    ride.close();
  }
  return { firstFrame, assigned };
}

async function killLatency(redisUrl: string, leaseMs: number, stallMs: number): Promise<{ told: number[]; reassigned: number[]; frame: number[] }> {
  const fleet = await startFleet(redisUrl, { leaseMs, stallMs, noShowMs: 5000 });
  const out = { told: [] as number[], reassigned: [] as number[], frame: [] as number[] };
  try {
    await Promise.all([fleet.startNode().ready(), fleet.startNode().ready()]);
    for (let i = 0; i < KILLS; i++) {
      const ride = fleet.client();
      const first = await ride.session(15_000);
      await sleep(200);
      const victim = fleet.nodes.find((n) => n.id === first.node)!;
      const marks = { told: 0, assigned: 0, frame: 0 };
      ride.on('requeued', () => (marks.told = performance.now()));
      ride.on('assigned', () => (marks.assigned = performance.now()));
      ride.onFrame((f) => {
        if (f.node !== first.node && marks.frame === 0) marks.frame = performance.now();
      });
      const t0 = performance.now();
      victim.child.kill();
      // A replacement boots while the stall check does its work, so two nodes are up for the next trial.
      const replacement = fleet.startNode().ready();
      await until('a frame from another node', () => marks.frame > 0, leaseMs + 4 * stallMs + 15_000);
      out.told.push(marks.told - t0);
      out.reassigned.push(marks.assigned - t0);
      out.frame.push(marks.frame - t0);
      await ride.stop();
      await ride.ended(10_000);
      ride.close();
      await replacement;
    }
  } finally {
    await fleet.close();
  }
  return out;
}

async function positionCost(redisUrl: string): Promise<Record<string, number>> {
  const name = `positions-${Date.now()}`;
  const queue = new Queue(name, { connection: { url: redisUrl }, prefix: 'framehost' });
  const redis = new Redis(redisUrl);
  try {
    for (let i = 0; i < WAITING; i += 1000) {
      await queue.addBulk(Array.from({ length: 1000 }, (_, k) => ({ name: 'ride', data: { secretHash: '', requestedAt: Date.now() }, opts: { jobId: `j-${i + k}` } })));
    }
    const waitKey = `framehost:${name}:wait`;
    const lrange: number[] = [];
    const compute: number[] = [];
    const watched = new Set(Array.from({ length: 1000 }, (_, k) => `j-${k * 10}`));
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      const ids = await queue.getRanges(['wait'], 0, -1, true);
      const t1 = performance.now();
      positionsOf(ids, watched);
      compute.push(performance.now() - t1);
      lrange.push(t1 - t0);
    }
    const lpos: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      await redis.lpos(waitKey, `j-${Math.floor(Math.random() * WAITING)}`);
      lpos.push(performance.now() - t0);
    }
    const t0 = performance.now();
    const jobs = await queue.getWaiting(0, -1);
    const getWaiting = performance.now() - t0;
    if (jobs.length !== WAITING) throw new Error(`expected ${WAITING} waiting, got ${jobs.length}`);
    return {
      waiting: WAITING,
      readWaitListP50Ms: r1(pct(lrange, 50)),
      readWaitListP99Ms: r1(pct(lrange, 99)),
      positionsOf1000ClientsMs: Math.round(pct(compute, 50) * 100) / 100,
      onePosLposP50Ms: Math.round(pct(lpos, 50) * 100) / 100,
      lposFor10000ClientsMs: Math.round(pct(lpos, 50) * WAITING),
      getWaitingAllJobsMs: Math.round(getWaiting),
    };
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const results: Record<string, unknown> = { machine: `${cpus().length}× ${cpus()[0]?.model ?? '?'}`, node: process.version, quick };
  try {
    const fleet = await startFleet(redis.url, { leaseMs: 3000, stallMs: 1000, noShowMs: 5000, gateway: { requestsPerSecond: 1000 } });
    try {
      await Promise.all([fleet.startNode().ready(), fleet.startNode().ready()]);
      await sleep(500);
      const assign = await assignLatency(fleet);
      results.requestToAssignedMs = summary(assign);
      console.log('request → assigned (free node), ms', results.requestToAssignedMs);
      const ff = await firstFrameLatency(fleet);
      results.connectToAssignedMs = summary(ff.assigned);
      results.connectToFirstFrameMs = summary(ff.firstFrame);
      console.log('connect → assigned, ms', results.connectToAssignedMs);
      console.log('connect → first frame, ms', results.connectToFirstFrameMs);
    } finally {
      await fleet.close();
    }
    for (const [lease, stall] of [
      [2000, 500],
      [5000, 2000],
    ] as const) {
      const k = await killLatency(redis.url, lease, stall);
      const key = `kill_lease${lease}_stall${stall}`;
      results[key] = { toldMs: summary(k.told), reassignedMs: summary(k.reassigned), firstFrameMs: summary(k.frame) };
      console.log(`kill -9 (lease ${lease} ms, stall check ${stall} ms)`, results[key]);
    }
    results.positions = await positionCost(redis.url);
    console.log('positions with 10,000 waiting', results.positions);
  } finally {
    await redis.stop();
  }
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`written ${jsonPath}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

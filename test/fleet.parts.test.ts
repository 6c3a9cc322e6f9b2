/**
 * The fleet's small stateful parts, each alone: the node's admission by ticket, the change
 * watch behind its heartbeats, the gateway's once-a-second fleet read and the fleet page's
 * coalesced push. No Redis, no processes.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor, type Actor } from 'xstate';
import { nodeMachine, type NodeHold, type NodeMachine, type TakeOutput } from '../src/machines/node.machine.ts';
import { NodeAdmission, type AdmissionDeps } from '../src/fleet/node-admission.ts';
import { StateChanges } from '../src/fleet/node-entry.ts';
import { FleetReads } from '../src/fleet/gateway-status.ts';
import { PageFeed } from '../src/fleet/page-feed.ts';
import { mintTicket } from '../src/fleet/ticket.ts';
import type { FleetView } from '../src/fleet/page.ts';

const SECRET = 'a-test-secret-of-enough-length';
const TIMES = { leaseMs: 60_000, fenceMarginMs: 1_000, renewEveryMs: 30_000, noShowMs: 60_000, drainDeadlineMs: 60_000, pollMs: 60_000 };

/** A node chart that connects at once and takes one job for node-a: it waits, reserved, for `ticket`. */
async function reservedNode(): Promise<{ actor: Actor<NodeMachine>; ticket: string }> {
  const ticket = mintTicket({ jobId: 'job-1', node: 'node-a', attempt: 1, exp: Date.now() + 60_000 }, SECRET);
  const hold: NodeHold = { jobId: 'job-1', attempt: 1, ticket, take: 1 };
  const machine = nodeMachine.provide({
    actors: {
      connect: fromPromise<void>(async () => {}),
      take: fromPromise<TakeOutput, { take: number }>(async () => ({ kind: 'job', hold, issuedAt: performance.now() })),
    },
  });
  const actor = createActor(machine, { input: { nodeId: 'node-a', now: () => performance.now(), times: TIMES } });
  actor.start();
  await waitFor(actor, (s) => s.matches({ ride: 'reserved' }));
  return { actor, ticket };
}

function admission(actor: Actor<NodeMachine>, over: Partial<AdmissionDeps> = {}): { desk: NodeAdmission; checks: string[] } {
  const checks: string[] = [];
  const desk = new NodeAdmission({
    nodeId: 'node-a',
    secret: SECRET,
    now: () => performance.now(),
    snapshot: () => actor.getSnapshot(),
    subOf: () => 'alice',
    checkLease: (why) => checks.push(why),
    ...over,
  });
  return { desk, checks };
}

describe('NodeAdmission', () => {
  it('lets the armed ticket in once; the session that begins uses it up', async () => {
    const { actor, ticket } = await reservedNode();
    const { desk } = admission(actor);
    expect(desk.admit({ ticket, sub: 'alice' })).toEqual({ ok: true });
    expect(desk.began()).toBe(true);
    expect(desk.began()).toBe(false); // only the session admission let in
    const again = desk.admit({ ticket, sub: 'alice' });
    expect(again.ok ? null : again.error.code).toBe('ticket_used');
    actor.stop();
  });

  it('keeps the ticket armed when the start is refused after admission', async () => {
    const { actor, ticket } = await reservedNode();
    const { desk } = admission(actor);
    expect(desk.admit({ ticket }).ok).toBe(true);
    await Promise.resolve(); // the start never began a session
    expect(desk.began()).toBe(false);
    expect(desk.admit({ ticket }).ok).toBe(true);
    actor.stop();
  });

  it('refuses no ticket, another node\'s, another user, and a ticket the node is not waiting for', async () => {
    const { actor, ticket } = await reservedNode();
    const { desk } = admission(actor);
    const code = (r: ReturnType<NodeAdmission['admit']>): string | null => (r.ok ? null : r.error.code);
    expect(code(desk.admit({}))).toBe('ticket_invalid');
    expect(code(desk.admit({ ticket: mintTicket({ jobId: 'job-1', node: 'node-b', attempt: 1, exp: Date.now() + 60_000 }, SECRET) }))).toBe('ticket_invalid');
    expect(code(desk.admit({ ticket, sub: 'mallory' }))).toBe('forbidden');
    expect(code(desk.admit({ ticket: mintTicket({ jobId: 'job-2', node: 'node-a', attempt: 1, exp: Date.now() + 60_000 }, SECRET) }))).toBe('ticket_invalid');
    actor.stop();
  });

  it('refuses once the lease is no longer proven, and asks the chart to check it', async () => {
    const { actor, ticket } = await reservedNode();
    const { desk, checks } = admission(actor, { now: () => performance.now() + TIMES.leaseMs });
    const r = desk.admit({ ticket });
    expect(r.ok ? null : r.error.code).toBe('ticket_invalid');
    expect(checks).toEqual(['lease not proven at admission']);
    actor.stop();
  });
});

describe('StateChanges', () => {
  it('calls back only when the set of active states changes', () => {
    let calls = 0;
    const changes = new StateChanges('node', () => calls++);
    changes.saw({ ride: 'registering', lease: 'none', drain: 'open' });
    changes.saw({ ride: 'registering', lease: 'none', drain: 'open' });
    expect(calls).toBe(1);
    changes.saw({ ride: { free: 'resting' }, lease: 'none', drain: 'open' });
    expect(calls).toBe(2);
  });
});

describe('FleetReads', () => {
  const settings = { redisTimeoutMs: 1_000, nodeStaleMs: 5_000, nodeGoneKeepMs: 60_000 };

  it('reads Redis once a second at most, and again at once after forget()', async () => {
    let reads = 0;
    const queue = { getJobCounts: async () => ({ wait: ++reads, active: 0 }) };
    const registry = { list: async () => ({ live: [], gone: [] }) };
    const fleet = new FleetReads(settings, queue, registry);
    expect((await fleet.read()).waiting).toBe(1);
    expect((await fleet.read()).waiting).toBe(1);
    fleet.forget();
    expect((await fleet.read()).waiting).toBe(2);
  });

  it('does not keep a failed read', async () => {
    let fail = true;
    const queue = { getJobCounts: async () => (fail ? Promise.reject(new Error('away')) : { wait: 3, active: 1 }) };
    const fleet = new FleetReads(settings, queue, { list: async () => ({ live: [], gone: [] }) });
    await expect(fleet.read()).rejects.toThrow('away');
    fail = false;
    expect(await fleet.read()).toMatchObject({ waiting: 3, active: 1 });
  });
});

describe('PageFeed', () => {
  it('builds one view at a time and one more for the changes meanwhile; a closed viewer is dropped', async () => {
    let builds = 0;
    const pending: (() => void)[] = [];
    const view = (): Promise<FleetView> => {
      builds++;
      return new Promise((resolve) => pending.push(() => resolve({ t: builds } as unknown as FleetView)));
    };
    const feed = new PageFeed(view, { warn: () => undefined });
    const written: string[] = [];
    const req = new EventEmitter();
    feed.add(req, { write: (d: string) => written.push(d), end: () => undefined });
    feed.changed();
    feed.changed();
    expect(builds).toBe(1);
    pending.shift()!();
    await new Promise((r) => setImmediate(r));
    expect(builds).toBe(2); // the changes during the first build: one more
    pending.shift()!();
    await new Promise((r) => setImmediate(r));
    expect(written).toEqual(['data: {"t":1}\n\n', 'data: {"t":2}\n\n']);
    req.emit('close');
    feed.changed();
    expect(builds).toBe(2); // nobody watches: nothing is built
    feed.close();
  });
});

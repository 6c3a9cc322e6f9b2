/**
 * The fleet node's statechart on its own: no Redis, no BullMQ, no runtime. Its actors (take,
 * publish, renew, complete) are fakes the test resolves by hand; its delays run on fake timers,
 * and its clock is the fake Date plus a skew that plays a frozen process (SIGSTOP moves the
 * monotonic clock on without any timer having fired).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromCallback, fromPromise, type Actor } from 'xstate';
import { getShortestPaths, getStateNodes } from '@xstate/graph';
import {
  mayAct,
  nodeMachine,
  registryStateOf,
  type CompleteOutput,
  type NodeEmitted,
  type NodeEvent,
  type NodeHold,
  type NodeMachine,
  type NodeRideResult,
  type NodeSnapshot,
  type NodeTimes,
  type RenewOutput,
  type TakeOutput,
} from '../src/machines/node.machine.ts';

/** Distinct small times, so a test can tell which delay fired. Proof lifetime: 1000 − 200 = 800 ms. */
const TIMES: NodeTimes = { leaseMs: 1000, fenceMarginMs: 200, renewEveryMs: 250, noShowMs: 3000, drainDeadlineMs: 5000, pollMs: 1500 };

interface Call<I, O> {
  readonly input: I;
  resolve(output: O): void;
  reject(err: unknown): void;
}

/** A promise actor whose every invocation waits for the test to answer it. */
function controlled<I, O>() {
  const calls: Call<I, O>[] = [];
  const logic = fromPromise<O, I>(({ input }) => new Promise<O>((resolve, reject) => calls.push({ input, resolve, reject })));
  return { logic, calls, last: (): Call<I, O> => calls.at(-1)! };
}

class Rig {
  readonly connect = controlled<unknown, void>();
  readonly take = controlled<{ take: number }, TakeOutput>();
  readonly publish = controlled<NodeHold, void>();
  readonly renew = controlled<NodeHold, RenewOutput>();
  readonly complete = controlled<{ hold: NodeHold; result: NodeRideResult; fenced: boolean }, CompleteOutput>();
  heartbeats = 0;
  /** How far the process's monotonic clock is ahead of the timers (a freeze). */
  skew = 0;
  readonly emitted: NodeEmitted[] = [];
  readonly actor: Actor<NodeMachine>;

  constructor(times: NodeTimes = TIMES) {
    const machine = nodeMachine.provide({
      actors: {
        connect: this.connect.logic,
        take: this.take.logic,
        publish: this.publish.logic,
        renew: this.renew.logic,
        complete: this.complete.logic,
        heartbeat: fromCallback(() => {
          this.heartbeats++;
          return () => undefined;
        }),
      },
    });
    this.actor = createActor(machine, { input: { nodeId: 'n1', times, now: () => this.now() } });
    this.actor.on('*', (e) => this.emitted.push(e));
    this.actor.start();
  }

  now(): number {
    return Date.now() + this.skew;
  }
  get snapshot(): NodeSnapshot {
    return this.actor.getSnapshot();
  }
  send(event: NodeEvent): void {
    this.actor.send(event);
  }
  /** Let promise answers through (microtasks), then move the fake clock. */
  async elapse(ms: number): Promise<void> {
    await vi.advanceTimersByTimeAsync(ms);
  }
  lines(): string[] {
    return this.emitted.flatMap((e) => (e.type === 'line' ? [e.line] : []));
  }
  stops(): string[] {
    return this.emitted.flatMap((e) => (e.type === 'session.stop' ? [e.reason] : []));
  }
  ride(): string {
    return JSON.stringify((this.snapshot.value as { ride: unknown }).ride);
  }
  lease(): string {
    return JSON.stringify((this.snapshot.value as { lease: unknown }).lease);
  }

  /** Connected and free, with the first take outstanding. */
  async free(): Promise<this> {
    this.connect.last().resolve();
    await this.elapse(0);
    return this;
  }
  /** The take answers with a job: the node is reserved, its proof dated at the take. */
  async reserved(jobId = 'j1', attempt = 1): Promise<this> {
    if (this.snapshot.matches({ ride: 'registering' })) await this.free();
    this.take.last().resolve({ kind: 'job', hold: { jobId, attempt, ticket: `t-${jobId}`, take: this.take.last().input.take }, issuedAt: this.now() });
    await this.elapse(0);
    return this;
  }
  async serving(sessionId = 's1'): Promise<this> {
    await this.reserved();
    this.send({ type: 'session.began', sessionId });
    return this;
  }
  /** Answer every outstanding renewal as Redis would for a live lock. */
  async confirmRenewals(): Promise<void> {
    for (const c of this.renew.calls.splice(0)) c.resolve({ confirmed: true, issuedAt: this.now() });
    await this.elapse(0);
  }
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('node chart: taking and serving', () => {
  it('registers, then takes; an empty queue waits for an event or the poll interval, never a tight loop', async () => {
    const rig = new Rig();
    expect(rig.ride()).toBe('"registering"');
    expect(rig.take.calls).toHaveLength(0);
    await rig.free();
    expect(rig.lines()).toEqual(['ready']);
    expect(rig.take.calls.map((c) => c.input.take)).toEqual([1]);
    rig.take.last().resolve({ kind: 'none' });
    await rig.elapse(0);
    expect(rig.ride()).toBe('{"free":"idle"}');
    await rig.elapse(TIMES.pollMs - 1);
    expect(rig.take.calls).toHaveLength(1);
    await rig.elapse(1);
    expect(rig.take.calls.map((c) => c.input.take)).toEqual([1, 2]);
    rig.take.last().resolve({ kind: 'none' });
    await rig.elapse(0);
    rig.send({ type: 'node.wake' }); // a `waiting` queue event
    expect(rig.take.calls.map((c) => c.input.take)).toEqual([1, 2, 3]);
    expect(registryStateOf(rig.snapshot)).toBe('free');
  });

  it('a job past its stall limit (failed at take time) is followed by another take at once', async () => {
    const rig = await new Rig().free();
    rig.take.last().resolve({ kind: 'retry' });
    await rig.elapse(0);
    expect(rig.take.calls).toHaveLength(2);
  });

  it('takes nothing while the runtime is busy (its last session still cleaning up), then takes when it is idle', async () => {
    const rig = new Rig();
    rig.send({ type: 'runtime.phase', idle: false });
    await rig.free();
    expect(rig.take.calls).toHaveLength(0);
    expect(registryStateOf(rig.snapshot)).toBe('busy');
    await rig.elapse(TIMES.pollMs * 3);
    expect(rig.take.calls).toHaveLength(0);
    rig.send({ type: 'runtime.phase', idle: true });
    expect(rig.take.calls).toHaveLength(1);
  });

  it('reserved: the ticket is armed, the assignment published, the user admitted; the ride completes with the session\'s end', async () => {
    const rig = await new Rig().reserved('j1', 2);
    expect(rig.ride()).toBe('"reserved"');
    expect(rig.lease()).toBe('{"active":{"renewal":"resting","standing":"held"}}');
    expect(rig.snapshot.context.hold).toEqual({ jobId: 'j1', attempt: 2, ticket: 't-j1', take: 1 });
    expect(rig.publish.calls.map((c) => c.input.jobId)).toEqual(['j1']);
    expect(mayAct(rig.snapshot.context, rig.now())).toBe(true);
    expect(registryStateOf(rig.snapshot)).toBe('assigned');
    rig.send({ type: 'session.began', sessionId: 's1' });
    expect(rig.ride()).toBe('"serving"');
    expect(registryStateOf(rig.snapshot)).toBe('busy');
    rig.send({ type: 'session.finished', sessionId: 'other', reason: 'stopped', frames: 1 }); // not this ride's
    expect(rig.ride()).toBe('"serving"');
    rig.send({ type: 'session.finished', sessionId: 's1', reason: 'stopped', frames: 42 });
    expect(rig.ride()).toBe('"completing"');
    expect(rig.complete.last().input).toEqual({ hold: { jobId: 'j1', attempt: 2, ticket: 't-j1', take: 1 }, result: { reason: 'stopped', sessionId: 's1', frames: 42 }, fenced: false });
    rig.complete.last().resolve({ completed: true });
    await rig.elapse(0);
    expect(rig.lines()).toEqual(['ready', 'job.taken', 'session.began', 'job.completed']);
    expect(rig.snapshot.context.hold).toBeNull();
    expect(rig.lease()).toBe('"none"');
    expect(mayAct(rig.snapshot.context, rig.now())).toBe(false); // nothing held: nothing may leave
    expect(rig.take.calls).toHaveLength(2); // free again, and taking
    expect(rig.snapshot.context.sessions).toBe(1);
  });

  it('a user who never comes releases the node at the no-show delay (no_show)', async () => {
    const rig = await new Rig().reserved();
    await rig.confirmRenewals();
    for (let t = 0; t < TIMES.noShowMs - TIMES.renewEveryMs; t += TIMES.renewEveryMs) {
      await rig.elapse(TIMES.renewEveryMs);
      await rig.confirmRenewals(); // the lease stays good: only the no-show ends this
    }
    expect(rig.ride()).toBe('"reserved"');
    await rig.elapse(TIMES.renewEveryMs);
    expect(rig.ride()).toBe('"completing"');
    expect(rig.complete.last().input.result).toEqual({ reason: 'no_show' });
    expect(rig.lines()).toContain('no_show');
  });
});

describe('node chart: the lease', () => {
  it('renews every renewEvery; each confirmation dates the proof at the renewal\'s sending', async () => {
    const rig = await new Rig().serving();
    await rig.elapse(TIMES.renewEveryMs - 1);
    expect(rig.renew.calls).toHaveLength(0);
    await rig.elapse(1);
    expect(rig.renew.calls).toHaveLength(1);
    const sentAt = rig.now();
    await rig.elapse(30); // the round trip
    rig.renew.last().resolve({ confirmed: true, issuedAt: sentAt });
    await rig.elapse(0);
    expect(rig.snapshot.context.proof).toEqual({ proofAt: sentAt, fenced: false });
    // An answer carrying an older sending time (replies out of order) never moves the proof back.
    await rig.elapse(TIMES.renewEveryMs);
    rig.renew.last().resolve({ confirmed: true, issuedAt: sentAt - 100 });
    await rig.elapse(0);
    expect(rig.snapshot.context.proof.proofAt).toBe(sentAt);
    // A check while the proof is young changes nothing.
    rig.send({ type: 'lease.check', why: 'test' });
    expect(rig.lease()).toBe('{"active":{"renewal":"resting","standing":"held"}}');
  });

  it('held → late when two renewals go unconfirmed → fenced at the fence margin; mayAct turns false exactly then', async () => {
    const rig = await new Rig().serving();
    const takenAt = rig.now();
    // Redis hangs: renewals are sent and never answered.
    await rig.elapse(2 * TIMES.renewEveryMs - 1);
    expect(rig.lease()).toContain('"standing":"held"');
    await rig.elapse(1);
    expect(rig.lease()).toContain('"standing":"late"');
    expect(rig.renew.calls.length).toBeGreaterThanOrEqual(1);
    await rig.elapse(takenAt + TIMES.leaseMs - TIMES.fenceMarginMs - rig.now() - 1);
    expect(mayAct(rig.snapshot.context, rig.now())).toBe(true);
    expect(rig.stops()).toEqual([]);
    await rig.elapse(1);
    expect(rig.lease()).toContain('"standing":"fenced"');
    expect(mayAct(rig.snapshot.context, rig.now())).toBe(false);
    expect(rig.stops()).toEqual(['fenced']);
    const fenced = rig.emitted.find((e) => e.type === 'line' && e.line === 'fenced');
    expect(fenced).toMatchObject({ fields: { jobId: 'j1', why: 'lease not renewed in time', sinceProofMs: 800 } });
    // The session ends (the runtime reports it); the ride ends fenced whatever the session said.
    rig.send({ type: 'session.finished', sessionId: 's1', reason: 'stopped', frames: 5 });
    expect(rig.complete.last().input).toMatchObject({ result: { reason: 'fenced' }, fenced: true });
    rig.complete.last().resolve({ completed: false, why: 'Missing lock for job j1' });
    await rig.elapse(0);
    expect(rig.emitted.filter((e) => e.type === 'line' && e.line === 'completion.rejected')).toEqual([
      { type: 'line', line: 'completion.rejected', level: 'warn', fields: { jobId: 'j1', attempt: 1, reason: 'fenced', fenced: true, err: 'Missing lock for job j1' } },
    ]);
    expect(rig.snapshot.context).toMatchObject({ fences: 1, refusedCompletions: 1, hold: null });
    expect(rig.ride()).toContain('free');
  });

  it('a late lease that gets a confirmation is held again', async () => {
    const rig = await new Rig().serving();
    await rig.elapse(2 * TIMES.renewEveryMs);
    expect(rig.lease()).toContain('"late"');
    rig.renew.last().resolve({ confirmed: true, issuedAt: rig.now() - 10 });
    await rig.elapse(0);
    expect(rig.lease()).toContain('"held"');
    await rig.elapse(700);
    expect(rig.stops()).toEqual([]);
  });

  it('a refused renewal (the lock is gone or another node\'s) fences at once; renewals stop', async () => {
    const rig = await new Rig().serving();
    await rig.elapse(TIMES.renewEveryMs);
    rig.renew.last().resolve({ confirmed: false, issuedAt: rig.now() });
    await rig.elapse(0);
    expect(rig.lease()).toBe('{"active":{"renewal":"stopped","standing":"fenced"}}');
    expect(rig.snapshot.context.fenceWhy).toMatch(/renewal refused/);
    expect(rig.stops()).toEqual(['fenced']);
    const before = rig.renew.calls.length;
    await rig.elapse(TIMES.renewEveryMs * 3);
    expect(rig.renew.calls.length).toBe(before);
  });

  it('a frozen process (the clock moved on, no timer fired): mayAct is false at once, and the frame path\'s check fences', async () => {
    const rig = await new Rig().serving();
    rig.skew = TIMES.leaseMs + 500; // SIGSTOP past the lease, then SIGCONT: nothing has run yet
    expect(mayAct(rig.snapshot.context, rig.now())).toBe(false);
    expect(rig.lease()).toContain('"held"'); // the chart's own timers have not fired yet…
    rig.send({ type: 'lease.check', why: 'lease not proven on the frame path' }); // …the gate's check decides
    expect(rig.lease()).toContain('"fenced"');
    expect(rig.snapshot.context.fenceWhy).toBe('lease not proven on the frame path');
    expect(rig.stops()).toEqual(['fenced']);
    rig.send({ type: 'lease.check', why: 'again' }); // fenced once only
    expect(rig.snapshot.context.fences).toBe(1);
    expect(rig.stops()).toEqual(['fenced']);
  });

  it('fenced while reserved (no session yet): the ride completes fenced without a session to stop', async () => {
    const rig = await new Rig().reserved();
    rig.skew = 5000;
    rig.send({ type: 'lease.check', why: 'lease not proven at admission' });
    expect(rig.ride()).toBe('"completing"');
    expect(rig.complete.last().input.result).toEqual({ reason: 'fenced' });
    expect(rig.stops()).toEqual([]);
  });
});

describe('node chart: drain', () => {
  it('a free node drains at once: no take after the drain began', async () => {
    const rig = await new Rig().free();
    rig.take.last().resolve({ kind: 'none' });
    await rig.elapse(0);
    rig.send({ type: 'node.drain' });
    expect(rig.ride()).toBe('"gone"');
    expect(rig.lines()).toEqual(['ready', 'drain.began', 'drained']);
    await rig.elapse(TIMES.pollMs * 2);
    expect(rig.take.calls).toHaveLength(1);
  });

  it('a node drained while still registering (its model loading) is gone at once; its connect is abandoned', async () => {
    const rig = new Rig();
    expect(rig.ride()).toBe('"registering"');
    rig.send({ type: 'node.drain' });
    expect(rig.ride()).toBe('"gone"');
    expect(rig.lines()).toEqual(['drain.began', 'drained']);
    // The connect that answers late changes nothing: no take, never ready.
    rig.connect.last().resolve();
    await rig.elapse(TIMES.pollMs * 2);
    expect(rig.take.calls).toHaveLength(0);
    expect(rig.lines()).not.toContain('ready');
  });

  it('a take sent before the drain is served; the node is gone when that ride completes', async () => {
    const rig = await new Rig().free();
    rig.send({ type: 'node.drain' });
    expect(rig.emitted.find((e) => e.type === 'line' && e.line === 'drain.began')).toMatchObject({ fields: { takesIssued: 1 } });
    await rig.reserved();
    expect(registryStateOf(rig.snapshot)).toBe('draining');
    rig.send({ type: 'session.began', sessionId: 's1' });
    rig.send({ type: 'session.finished', sessionId: 's1', reason: 'stopped', frames: 3 });
    rig.complete.last().resolve({ completed: true });
    await rig.elapse(0);
    expect(rig.ride()).toBe('"gone"');
    expect(rig.take.calls).toHaveLength(1);
  });

  it('the running session may finish within the drain deadline; at the deadline it is stopped (shutdown)', async () => {
    const rig = await new Rig().serving();
    rig.send({ type: 'node.drain' });
    for (let t = 0; t < TIMES.drainDeadlineMs - TIMES.renewEveryMs; t += TIMES.renewEveryMs) {
      await rig.elapse(TIMES.renewEveryMs);
      await rig.confirmRenewals();
    }
    expect(rig.stops()).toEqual([]);
    await rig.elapse(TIMES.renewEveryMs);
    expect(rig.stops()).toEqual(['shutdown']);
    expect(rig.lines()).toContain('drain.deadline');
    rig.send({ type: 'session.finished', sessionId: 's1', reason: 'shutdown', frames: 9 });
    rig.complete.last().resolve({ completed: true });
    await rig.elapse(0);
    expect(rig.ride()).toBe('"gone"');
  });

  it('a reserved ride at the drain deadline (shorter than the no-show delay) ends shutdown', async () => {
    const rig = await new Rig({ ...TIMES, drainDeadlineMs: 100 }).reserved();
    rig.send({ type: 'node.drain' });
    await rig.elapse(99);
    expect(rig.ride()).toBe('"reserved"');
    await rig.elapse(1);
    expect(rig.ride()).toBe('"completing"');
    expect(rig.complete.last().input.result).toEqual({ reason: 'shutdown' });
    expect(rig.stops()).toEqual([]); // no session to stop
    rig.complete.last().resolve({ completed: true });
    await rig.elapse(0);
    expect(rig.ride()).toBe('"gone"');
  });

  it('node.close ends it from any state', async () => {
    const rig = await new Rig().serving();
    rig.send({ type: 'node.close' });
    expect(rig.ride()).toBe('"gone"');
  });
});

// ── path coverage: every leaf state is reachable by events the chart handles ────────────────

const HOLD: NodeHold = { jobId: 'j1', attempt: 1, ticket: 't', take: 1 };
const after = (delay: string, state: string): NodeEvent => ({ type: `xstate.after.${delay}.node.${state}` }) as unknown as NodeEvent;
const done = (id: string, output: unknown): NodeEvent => ({ type: `xstate.done.actor.${id}`, output }) as unknown as NodeEvent;

const GRAPH_EVENTS: NodeEvent[] = [
  done('connect', undefined),
  done('take', { kind: 'job', hold: HOLD, issuedAt: 0 }),
  done('take', { kind: 'none' }),
  done('renew', { confirmed: true, issuedAt: 0 }),
  done('renew', { confirmed: false, issuedAt: 0 }),
  done('complete', { completed: true }),
  { type: 'session.began', sessionId: 's1' },
  { type: 'session.finished', sessionId: 's1', reason: 'stopped', frames: 1 },
  { type: 'node.drain' },
  { type: 'runtime.phase', idle: false },
  after('renewEvery', 'lease.active.renewal.resting'),
  after('renewalLate', 'lease.active.standing.held'),
  after('fenceMargin', 'lease.active.standing.late'),
  after('drainDeadline', 'drain.draining'),
  after('noShow', 'ride.reserved'),
];

describe('node chart: path coverage', () => {
  it('reaches every leaf state of the chart', () => {
    const machine = nodeMachine.provide({ actors: { connect: fromPromise<void>(async () => {}), heartbeat: fromCallback(() => undefined) } });
    const paths = getShortestPaths(machine, {
      input: { nodeId: 'n1', times: TIMES, now: () => 0 },
      events: GRAPH_EVENTS,
      serializeState: (s) => JSON.stringify([s.value, s.context.hold?.jobId ?? null, s.context.sessionId, s.context.draining, s.context.proof.fenced, s.context.runtimeIdle]),
    });
    const leaves = getStateNodes(machine.root).filter((n) => n.type === 'atomic' || n.type === 'final');
    // `released` is transient (always), like the runtime's `recovering`.
    const unreached = leaves.filter((n) => n.key !== 'released' && !paths.some((p) => p.state.matches(valueOf(n.path)))).map((n) => n.id);
    expect(leaves.length).toBeGreaterThan(12);
    expect(unreached).toEqual([]);
    expect(paths.some((p) => p.state.matches({ ride: 'released' }))).toBe(false);
  });
});

/** A state value for a state node's path: ['ride', 'free', 'idle'] → { ride: { free: 'idle' } }. */
function valueOf(path: readonly string[]): NodeSnapshot['value'] {
  let v: unknown = path.at(-1)!;
  for (let i = path.length - 2; i >= 0; i--) v = { [path[i]!]: v };
  return v as NodeSnapshot['value'];
}

/**
 * The gateway's ride chart on its own: no Redis, no sockets. The edge's checks have run before
 * an event arrives (the assignment is the job's current try); the test plays the queue events
 * and the client's connection, and drives the delays with fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromPromise, type Actor } from 'xstate';
import { getShortestPaths, getStateNodes } from '@xstate/graph';
import { errorValue } from '../src/errors.ts';
import { rideMachine, ridePhaseOf, type RideAssignment, type RideEmitted, type RideEvent, type RideMachine, type RideTimes } from '../src/machines/ride.machine.ts';

const TIMES: RideTimes = { reconnectGraceMs: 1000, noShowMs: 4000 };
const assignment = (attempt: number, node = `n${attempt}`): RideAssignment => ({ jobId: 'j1', url: `http://${node}`, ticket: `t${attempt}`, node, attempt });

interface Removal {
  readonly jobId: string;
  resolve(removed: boolean): void;
}

class Rig {
  readonly emitted: RideEmitted[] = [];
  readonly removals: Removal[] = [];
  readonly actor: Actor<RideMachine>;
  constructor(held?: { attempt: number }) {
    const machine = rideMachine.provide({
      actors: {
        abandon: fromPromise<{ removed: boolean }, { jobId: string }>(({ input }) => new Promise((resolve) => this.removals.push({ jobId: input.jobId, resolve: (removed) => resolve({ removed }) }))),
      },
    });
    this.actor = createActor(machine, { input: { jobId: 'j1', requestedAt: Date.now(), times: TIMES, now: Date.now, ...(held ? { held } : {}) } });
    this.actor.on('*', (e) => this.emitted.push(e));
    this.actor.start();
  }
  send(e: RideEvent): void {
    this.actor.send(e);
  }
  phase(): string {
    return ridePhaseOf(this.actor.getSnapshot());
  }
  client(): string {
    return JSON.stringify((this.actor.getSnapshot().value as { client: unknown }).client);
  }
  types(): string[] {
    return this.emitted.map((e) => e.type);
  }
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ride chart', () => {
  it('waits in line, is assigned (first wait measured), rides, and ends with the node\'s reason', () => {
    const rig = new Rig();
    expect(rig.phase()).toBe('waiting');
    expect(rig.types()).toEqual(['positions.watch']);
    vi.advanceTimersByTime(250);
    rig.send({ type: 'ride.assigned', assignment: assignment(1) });
    expect(rig.phase()).toBe('assigned');
    expect(rig.emitted.slice(1)).toEqual([
      { type: 'positions.unwatch' },
      { type: 'waited', seconds: 0.25, reassignment: false },
      { type: 'tell.assigned', assignment: assignment(1), reassignment: false },
    ]);
    rig.send({ type: 'ride.riding', attempt: 2, sessionId: 's-old' }); // not this try's
    expect(rig.phase()).toBe('assigned');
    rig.send({ type: 'ride.riding', attempt: 1, sessionId: 's1' });
    expect(rig.phase()).toBe('riding');
    expect(rig.actor.getSnapshot().context.sessionId).toBe('s1');
    rig.send({ type: 'ride.ended', reason: 'stopped' });
    expect(rig.phase()).toBe('ended');
    expect(rig.emitted.at(-1)).toEqual({ type: 'tell.ended', reason: 'stopped' });
    rig.send({ type: 'ride.ended', reason: 'returned' }); // ended once only
    expect(rig.types().filter((t) => t === 'tell.ended')).toHaveLength(1);
  });

  it('an assignment whose session has not begun by the no-show delay is shown overdue (the node ends it)', () => {
    const rig = new Rig();
    rig.send({ type: 'ride.assigned', assignment: assignment(1) });
    vi.advanceTimersByTime(TIMES.noShowMs - 1);
    expect(rig.phase()).toBe('assigned');
    vi.advanceTimersByTime(1);
    expect(rig.phase()).toBe('overdue');
    rig.send({ type: 'ride.ended', reason: 'no_show' });
    expect(rig.emitted.at(-1)).toEqual({ type: 'tell.ended', reason: 'no_show' });
  });

  it('requeued: told, back in line, and the second wait is measured from the requeue, as a reassignment', () => {
    const rig = new Rig();
    rig.send({ type: 'ride.assigned', assignment: assignment(1) });
    rig.send({ type: 'ride.riding', attempt: 1, sessionId: 's1' });
    vi.advanceTimersByTime(5000);
    rig.send({ type: 'ride.requeued' });
    expect(rig.phase()).toBe('requeued');
    expect(rig.types().slice(-2)).toEqual(['tell.requeued', 'positions.watch']);
    // A stale assignment (the old try, announced late) is ignored.
    rig.send({ type: 'ride.assigned', assignment: assignment(1) });
    expect(rig.phase()).toBe('requeued');
    vi.advanceTimersByTime(1500);
    rig.send({ type: 'ride.assigned', assignment: assignment(2) });
    expect(rig.phase()).toBe('assigned');
    expect(rig.emitted.filter((e) => e.type === 'waited')).toEqual([
      { type: 'waited', seconds: 0, reassignment: false },
      { type: 'waited', seconds: 1.5, reassignment: true },
    ]);
    expect(rig.emitted.at(-1)).toEqual({ type: 'tell.assigned', assignment: assignment(2), reassignment: true });
    expect(rig.actor.getSnapshot().context).toMatchObject({ attempt: 2, assignments: 2, requeues: 1, requeuedAt: null });
  });

  it('a failed ride ends with its error', () => {
    const rig = new Rig();
    rig.send({ type: 'ride.ended', reason: 'failed', error: errorValue('node_lost', 'job stalled more than allowable limit') });
    expect(rig.emitted.at(-1)).toEqual({ type: 'tell.ended', reason: 'failed', error: errorValue('node_lost', 'job stalled more than allowable limit') });
  });

  it('a waiting client gone past the reconnect grace: the ride is removed from the queue; back in time, it keeps its place', async () => {
    const rig = new Rig();
    rig.send({ type: 'client.left' });
    vi.advanceTimersByTime(TIMES.reconnectGraceMs - 1);
    rig.send({ type: 'client.back' });
    vi.advanceTimersByTime(TIMES.reconnectGraceMs * 2);
    expect(rig.client()).toBe('"present"');
    expect(rig.removals).toHaveLength(0);
    rig.send({ type: 'client.left' });
    vi.advanceTimersByTime(TIMES.reconnectGraceMs);
    expect(rig.client()).toBe('"removing"');
    expect(rig.removals.map((r) => r.jobId)).toEqual(['j1']);
    rig.send({ type: 'ride.ended', reason: 'cancelled' }); // the queue's `removed` event, from this very removal
    expect(rig.phase()).toBe('waiting'); // the removal reports, not an end
    rig.removals[0]!.resolve(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(rig.client()).toBe('"forgotten"');
    expect(rig.emitted.at(-1)).toEqual({ type: 'abandoned', removed: true });
  });

  it('a client gone while its ride is at a node: the ride lives on there, this replica forgets it', () => {
    const rig = new Rig();
    rig.send({ type: 'ride.assigned', assignment: assignment(1) });
    rig.send({ type: 'client.left' });
    vi.advanceTimersByTime(TIMES.reconnectGraceMs);
    expect(rig.client()).toBe('"forgotten"');
    expect(rig.removals).toHaveLength(0);
    expect(rig.emitted.at(-1)).toEqual({ type: 'abandoned', removed: false });
  });

  it('a ride taken over from another replica while a node holds it starts riding at that attempt', () => {
    const rig = new Rig({ attempt: 3 });
    expect(rig.phase()).toBe('riding');
    expect(rig.types()).toEqual([]);
    rig.send({ type: 'ride.assigned', assignment: assignment(3) });
    expect(rig.phase()).toBe('riding'); // not newer
    rig.send({ type: 'ride.requeued' });
    rig.send({ type: 'ride.assigned', assignment: assignment(4) });
    expect(rig.phase()).toBe('assigned');
  });
});

const GRAPH_EVENTS: RideEvent[] = [
  { type: 'ride.assigned', assignment: assignment(1) },
  { type: 'ride.assigned', assignment: assignment(2) },
  { type: 'ride.riding', attempt: 1, sessionId: 's1' },
  { type: 'ride.requeued' },
  { type: 'ride.ended', reason: 'stopped' },
  { type: 'client.left' },
  { type: 'client.back' },
  { type: 'xstate.after.noShow.ride.ride.assigned.onTime' } as unknown as RideEvent,
  { type: 'xstate.after.reconnectGrace.ride.client.away' } as unknown as RideEvent,
  { type: 'xstate.done.actor.abandon', output: { removed: true } } as unknown as RideEvent,
];

describe('ride chart: path coverage', () => {
  it('reaches every leaf state except the transient start', () => {
    const paths = getShortestPaths(rideMachine, {
      input: { jobId: 'j1', requestedAt: 0, times: TIMES, now: () => 0 },
      events: GRAPH_EVENTS,
      serializeState: (s) => JSON.stringify([s.value, s.context.attempt]),
    });
    const leaves = getStateNodes(rideMachine.root).filter((n) => n.type === 'atomic' || n.type === 'final');
    const valueOf = (path: readonly string[]): object => {
      let v: unknown = path.at(-1)!;
      for (let i = path.length - 2; i >= 0; i--) v = { [path[i]!]: v };
      return v as object;
    };
    const unreached = leaves.filter((n) => n.key !== 'start' && !paths.some((p) => p.state.matches(valueOf(n.path) as never))).map((n) => n.id);
    expect(leaves.length).toBeGreaterThan(8);
    expect(unreached).toEqual([]);
  });
});

/**
 * The runtime statechart on its own: no worker, no ONNX, no sockets. The inference actor is a
 * fake that records what the chart tells it; the tests play the worker by sending `worker.*`
 * events to the root actor, and drive the chart's delays with fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromCallback, type Actor, type SnapshotFrom } from 'xstate';
import { getShortestPaths, getStateNodes } from '@xstate/graph';
import { errorValue, type ErrorCode, type ErrorValue } from '../src/errors.ts';
import { runtimeMachine, type RuntimeMachine } from '../src/machines/runtime.machine.ts';
import { PHASES, phaseOf, type Phase } from '../src/machines/phase.ts';
import type {
  CheckedCommand,
  EndReason,
  InferenceInput,
  Limits,
  ModelInfo,
  RequestEvent,
  RuntimeEmitted,
  RuntimeEvent,
  SessionEnd,
  SessionRecord,
} from '../src/machines/types.ts';

// ── fixtures ────────────────────────────────────────────────────────────────────────────────

const MODEL: ModelInfo = { name: 'fake', version: '1.0.0', provider: 'cpu', adapter: 'test CPU', loadMs: 3 };

/** Distinct small limits, so a test can tell which delay fired. */
const LIMITS: Limits = {
  loadTimeoutMs: 1_000,
  startTimeoutMs: 2_000,
  stopDeadlineMs: 3_000,
  cleanupTimeoutMs: 4_000,
  closeTimeoutMs: 5_000,
  orphanTimeoutMs: 6_000,
  heartbeatTimeoutMs: 60_000, // far beyond the other delays; its own tests advance to it
};

const ALICE = 'alice';
const BOB = 'bob';
const VALID: CheckedCommand = { ok: true, name: 'feed', args: { rate: 0.05 } };
const INVALID_ARGS = errorValue('invalid_args', 'rate must be a number');
const INVALID: CheckedCommand = { ok: false, error: INVALID_ARGS };
const CRASH: ErrorValue = errorValue('worker_crashed', 'exit code 134');

type Answer = Extract<RuntimeEmitted, { type: 'request.accepted' | 'request.refused' }>;
type Snapshot = SnapshotFrom<RuntimeMachine>;

let requestSeq = 0;
const nextRequestId = (): string => `req-${++requestSeq}`;

/** Request events, each with a fresh request id. */
const req = {
  start: (owner = ALICE, sessionId = 's1'): RequestEvent => ({ type: 'session.start', requestId: nextRequestId(), owner, sessionId }),
  stop: (owner?: string, reason?: EndReason): RequestEvent => ({
    type: 'session.stop',
    requestId: nextRequestId(),
    ...(owner !== undefined ? { owner } : {}),
    ...(reason !== undefined ? { reason } : {}),
  }),
  resume: (sub: string): RequestEvent => ({ type: 'session.resume', requestId: nextRequestId(), sub }),
  command: (owner = ALICE, command: CheckedCommand = VALID): RequestEvent => ({
    type: 'session.command',
    requestId: nextRequestId(),
    owner,
    command,
  }),
};

/** Worker reports, as the inference actor would send them back. */
const worker = {
  ready: (): RuntimeEvent => ({ type: 'worker.ready', model: MODEL }),
  failed: (error = errorValue('load_failed', 'bad weights')): RuntimeEvent => ({ type: 'worker.failed', error }),
  started: (sessionId = 's1'): RuntimeEvent => ({ type: 'worker.session.started', sessionId }),
  ended: (reason: EndReason, sessionId = 's1', error?: ErrorValue): RuntimeEvent => ({
    type: 'worker.session.ended',
    sessionId,
    reason,
    ...(error ? { error } : {}),
  }),
  cleaned: (sessionId = 's1'): RuntimeEvent => ({ type: 'worker.session.cleaned', sessionId }),
  closed: (): RuntimeEvent => ({ type: 'worker.closed' }),
  exited: (error = CRASH): RuntimeEvent => ({ type: 'worker.exited', error }),
};

// ── the rig: the chart, a fake inference actor per generation, and what came out ─────────────

/** One inference actor the chart started: what it was told, and whether the chart stopped it. */
interface FakeWorker {
  readonly received: InferenceInput[];
  stopped: boolean;
  /** The (fake) time of the worker's last heartbeat, as the real actor keeps it. */
  lastBeat: number;
}

/**
 * `answerProbes`: answer the watchdog's `worker.probe` as the real actor does (the silence since
 * the last beat, on the fake clock). Off for the path replay, which plays every event itself.
 */
function fakeInference(workers: FakeWorker[], answerProbes = false) {
  return fromCallback<InferenceInput>(({ receive, sendBack }) => {
    const fake: FakeWorker = { received: [], stopped: false, lastBeat: Date.now() };
    workers.push(fake);
    receive((message) => {
      fake.received.push(message);
      if (message.type === 'worker.probe' && answerProbes) sendBack({ type: 'worker.liveness', silentMs: Date.now() - fake.lastBeat } satisfies RuntimeEvent);
    });
    return () => {
      fake.stopped = true;
    };
  });
}

class Rig {
  readonly workers: FakeWorker[] = [];
  readonly emitted: RuntimeEmitted[] = [];
  readonly actor: Actor<RuntimeMachine>;

  constructor(limits: Partial<Limits> = LIMITS, answerProbes = false) {
    const machine = runtimeMachine.provide({ actors: { inference: fakeInference(this.workers, answerProbes) } });
    this.actor = createActor(machine, { input: { limits } });
    this.actor.on('*', (event) => this.emitted.push(event));
    this.actor.start();
  }

  get snapshot(): Snapshot {
    return this.actor.getSnapshot();
  }
  get context(): Snapshot['context'] {
    return this.snapshot.context;
  }
  phase(): Phase {
    return phaseOf(this.snapshot);
  }
  /** The inference actor of the current generation. */
  get worker(): FakeWorker {
    const current = this.workers.at(-1);
    if (!current) throw new Error('no inference actor was started');
    return current;
  }
  send(event: RuntimeEvent): this {
    this.actor.send(event);
    return this;
  }
  /** The worker beats: the actor notes the time; the chart hears nothing of it. */
  beat(): this {
    this.worker.lastBeat = Date.now();
    return this;
  }
  /** Send a request and return its one answer; fail if it got none, several, or answered another request. */
  request(event: RequestEvent): Answer {
    const before = this.emitted.length;
    this.actor.send(event);
    const answers = this.emitted.slice(before).filter(isAnswer);
    expect(answers.map((a) => a.requestId)).toEqual([event.requestId]);
    return answers[0]!;
  }
  accept(event: RequestEvent): Extract<Answer, { type: 'request.accepted' }> {
    const answer = this.request(event);
    if (answer.type !== 'request.accepted') throw new Error(`refused: ${answer.error.code} (${answer.error.message})`);
    return answer;
  }
  refuse(event: RequestEvent): ErrorValue {
    const answer = this.request(event);
    if (answer.type !== 'request.refused') throw new Error(`${event.type} was accepted`);
    return answer.error;
  }
  finished(): SessionEnd[] {
    return this.emitted.flatMap((e) => (e.type === 'session.finished' ? [e.end] : []));
  }
  began(): SessionRecord[] {
    return this.emitted.flatMap((e) => (e.type === 'session.began' ? [e.session] : []));
  }
  /** Advance fake time by `ms`; the chart's delayed transitions fire synchronously. */
  elapse(ms: number): this {
    vi.advanceTimersByTime(ms);
    return this;
  }
}

function isAnswer(event: RuntimeEmitted): event is Answer {
  return event.type === 'request.accepted' || event.type === 'request.refused';
}

// ── getting the chart into each reachable phase ──────────────────────────────────────────────

type ReachablePhase = Exclude<Phase, 'recovering' | 'shutdown'>;

/** From boot to the phase, with a session `s1` owned by alice where there is one. */
const REACH: Record<ReachablePhase, (rig: Rig) => void> = {
  loading: () => undefined,
  idle: (rig) => rig.send(worker.ready()),
  starting: (rig) => {
    REACH.idle(rig);
    rig.accept(req.start(ALICE, 's1'));
  },
  running: (rig) => {
    REACH.starting(rig);
    rig.send(worker.started('s1'));
  },
  stopping: (rig) => {
    REACH.running(rig);
    rig.accept(req.stop(ALICE));
  },
  cleanup: (rig) => {
    REACH.running(rig);
    rig.send(worker.ended('returned'));
  },
  closing: (rig) => {
    REACH.idle(rig);
    rig.send({ type: 'runtime.shutdown' });
  },
  failed: (rig) => rig.send(worker.failed()),
};

const rigs: Rig[] = [];

function rigIn(phase: ReachablePhase, limits?: Partial<Limits>, answerProbes = false): Rig {
  const rig = new Rig(limits, answerProbes);
  rigs.push(rig);
  REACH[phase](rig);
  expect(rig.phase()).toBe(phase);
  return rig;
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  for (const rig of rigs.splice(0)) rig.actor.stop();
  vi.useRealTimers();
});

// ── 1. the happy path ────────────────────────────────────────────────────────────────────────

describe('a session from start to finish', () => {
  it('boots into loading with one inference actor, then idles once the model is ready', () => {
    const rig = rigIn('loading');
    expect(rig.workers).toHaveLength(1);
    expect(rig.context.workerStarts).toBe(1);
    expect(rig.context.model).toBeNull();

    rig.send(worker.ready());
    expect(rig.phase()).toBe('idle');
    expect(rig.context.model).toEqual(MODEL);
    expect(rig.context.limits).toEqual(LIMITS);
  });

  it('uses the default limits where the input gives none', () => {
    const rig = new Rig({ stopDeadlineMs: 7 });
    rigs.push(rig);
    expect(rig.context.limits.stopDeadlineMs).toBe(7);
    expect(rig.context.limits.loadTimeoutMs).toBe(120_000);
  });

  it('starts, runs, takes commands, stops, cleans up, and serves a second session the same way', () => {
    const rig = rigIn('idle');

    for (const [sessionId, owner] of [['s1', ALICE], ['s2', BOB]] as const) {
      const emittedBefore = rig.emitted.length;
      const start = req.start(owner, sessionId);
      expect(rig.accept(start)).toEqual({ type: 'request.accepted', requestId: start.requestId, sessionId });
      expect(rig.emitted.slice(emittedBefore)).toContainEqual({ type: 'session.began', session: { id: sessionId, owner } });
      expect(rig.phase()).toBe('starting');
      expect(rig.context.session).toEqual({ id: sessionId, owner });
      expect(rig.worker.received.at(-1)).toEqual({ type: 'session.start', sessionId });

      rig.send(worker.started(sessionId));
      expect(rig.phase()).toBe('running');

      const command = req.command(owner, VALID);
      expect(rig.accept(command)).toEqual({ type: 'request.accepted', requestId: command.requestId, sessionId });
      expect(rig.worker.received.at(-1)).toEqual({
        type: 'session.command',
        sessionId,
        requestId: command.requestId,
        name: 'feed',
        args: { rate: 0.05 },
      });
      expect(rig.phase()).toBe('running');

      expect(rig.accept(req.stop(owner)).sessionId).toBe(sessionId);
      expect(rig.phase()).toBe('stopping');
      expect(rig.worker.received.at(-1)).toEqual({ type: 'session.stop', sessionId, reason: 'stopped' });

      // The loop honours stop by returning; the chart records why it was asked to.
      rig.send(worker.ended('returned', sessionId));
      expect(rig.phase()).toBe('cleanup');
      expect(rig.finished().at(-1)).toEqual({ sessionId, reason: 'stopped' });

      rig.send(worker.cleaned(sessionId));
      expect(rig.phase()).toBe('idle');
      expect(rig.context.session).toBeNull();
      expect(rig.context.stopReason).toBeNull();
    }

    expect(rig.began().map((s) => s.id)).toEqual(['s1', 's2']);
    expect(rig.finished().map((e) => e.sessionId)).toEqual(['s1', 's2']);
    expect(rig.context.sessionsStarted).toBe(2);
    expect(rig.context.workerStarts).toBe(1);
    expect(rig.workers).toHaveLength(1);
    expect(rig.worker.stopped).toBe(false);
  });

  it('accepts a stop from the embedding API (no owner) and passes its reason to the worker', () => {
    const rig = rigIn('running');
    rig.accept(req.stop(undefined, 'orphaned'));
    expect(rig.worker.received.at(-1)).toEqual({ type: 'session.stop', sessionId: 's1', reason: 'orphaned' });
    rig.send(worker.ended('returned'));
    expect(rig.finished()).toEqual([{ sessionId: 's1', reason: 'orphaned' }]);
  });

  it('accepts a stop while the session is still starting', () => {
    const rig = rigIn('starting');
    rig.accept(req.stop(ALICE));
    expect(rig.phase()).toBe('stopping');
    expect(rig.worker.received.at(-1)).toEqual({ type: 'session.stop', sessionId: 's1', reason: 'stopped' });
  });

  it('treats a second stop while stopping as done already: accepted, nothing sent again', () => {
    const rig = rigIn('stopping');
    const sent = rig.worker.received.length;
    rig.accept(req.stop(ALICE));
    expect(rig.phase()).toBe('stopping');
    expect(rig.worker.received).toHaveLength(sent);
  });
});

// ── 2. every request is answered exactly once, in every state ──────────────────────────────

const REQUESTS = {
  'start by another client': () => req.start(BOB, 's2'),
  'stop by the owner': () => req.stop(ALICE),
  'stop by the API (no owner)': () => req.stop(),
  'stop by another client': () => req.stop(BOB),
  'valid command by the owner': () => req.command(ALICE, VALID),
  'valid command by another client': () => req.command(BOB, VALID),
  'invalid command by the owner': () => req.command(ALICE, INVALID),
  'resume by a token user': () => req.resume('user-1'),
} satisfies Record<string, () => RequestEvent>;

type RequestKind = keyof typeof REQUESTS;
type Outcome = 'accepted' | ErrorCode;

const outsideSession = (start: Outcome): Record<RequestKind, Outcome> => ({
  'start by another client': start,
  'stop by the owner': 'no_session',
  'stop by the API (no owner)': 'no_session',
  'stop by another client': 'no_session',
  'valid command by the owner': 'no_session',
  'valid command by another client': 'no_session',
  'invalid command by the owner': 'no_session',
  'resume by a token user': 'no_session',
});

const MATRIX: Record<ReachablePhase, Record<RequestKind, Outcome>> = {
  loading: outsideSession('not_ready'),
  idle: outsideSession('accepted'),
  starting: {
    'start by another client': 'busy',
    'stop by the owner': 'accepted',
    'stop by the API (no owner)': 'accepted',
    'stop by another client': 'not_owner',
    'valid command by the owner': 'accepted',
    'valid command by another client': 'not_owner',
    'invalid command by the owner': 'invalid_args',
    'resume by a token user': 'not_owner', // the rig's session was started without a token: it belongs to no sub
  },
  running: {
    'start by another client': 'busy',
    'stop by the owner': 'accepted',
    'stop by the API (no owner)': 'accepted',
    'stop by another client': 'not_owner',
    'valid command by the owner': 'accepted',
    'valid command by another client': 'not_owner',
    'invalid command by the owner': 'invalid_args',
    'resume by a token user': 'not_owner', // the rig's session was started without a token: it belongs to no sub
  },
  stopping: {
    'start by another client': 'busy',
    'stop by the owner': 'accepted',
    'stop by the API (no owner)': 'accepted',
    'stop by another client': 'not_owner',
    'valid command by the owner': 'no_session',
    'valid command by another client': 'no_session',
    'invalid command by the owner': 'no_session',
    'resume by a token user': 'not_owner',
  },
  cleanup: outsideSession('busy'),
  closing: outsideSession('shutting_down'),
  failed: outsideSession('load_failed'),
};

const MATRIX_CASES = (Object.keys(MATRIX) as ReachablePhase[]).flatMap((phase) =>
  (Object.keys(REQUESTS) as RequestKind[]).map((kind) => ({ phase, kind, outcome: MATRIX[phase][kind] })),
);

describe('the request matrix', () => {
  it.each(MATRIX_CASES)('$phase: $kind → $outcome', ({ phase, kind, outcome }) => {
    const rig = rigIn(phase);
    const before = rig.snapshot;
    const sentBefore = rig.worker.received.length;
    const event = REQUESTS[kind]();

    const answer = rig.request(event);

    if (outcome === 'accepted') {
      expect(answer.type).toBe('request.accepted');
      const expectedSession = event.type === 'session.start' ? event.sessionId : 's1';
      expect(answer).toEqual({ type: 'request.accepted', requestId: event.requestId, sessionId: expectedSession });
    } else {
      expect(answer).toMatchObject({ type: 'request.refused', requestId: event.requestId, error: { code: outcome } });
      // A refusal changes nothing: same state, same session, nothing sent to the worker.
      expect(rig.snapshot.value).toEqual(before.value);
      expect(rig.snapshot.context).toEqual(before.context);
      expect(rig.worker.received).toHaveLength(sentBefore);
    }
  });

  it('covers every reachable phase', () => {
    const phases = new Set<Phase>(Object.keys(MATRIX) as ReachablePhase[]);
    expect(phases).toEqual(new Set(PHASES.filter((p) => p !== 'recovering' && p !== 'shutdown')));
  });

  it("refuses an invalid command with the command's own error", () => {
    const rig = rigIn('running');
    expect(rig.refuse(req.command(ALICE, INVALID))).toEqual(INVALID_ARGS);
  });

  it('refuses a start while running without disturbing the running session', () => {
    const rig = rigIn('running');
    const error = rig.refuse(req.start(BOB, 's2'));
    expect(error.code).toBe('busy');
    expect(rig.phase()).toBe('running');
    expect(rig.context.session).toEqual({ id: 's1', owner: ALICE });
    expect(rig.began().map((s) => s.id)).toEqual(['s1']);
    expect(rig.finished()).toEqual([]);

    // The session still works for its owner.
    rig.accept(req.command(ALICE));
    rig.accept(req.stop(ALICE));
    expect(rig.worker.received.at(-1)).toEqual({ type: 'session.stop', sessionId: 's1', reason: 'stopped' });
  });

  it('refuses a start during cleanup, then accepts one once cleanup ends', () => {
    const rig = rigIn('cleanup');
    expect(rig.refuse(req.start(BOB, 's2')).code).toBe('busy');
    rig.send(worker.cleaned('s1'));
    expect(rig.accept(req.start(BOB, 's2')).sessionId).toBe('s2');
  });
});

// ── 3. sessions that end by themselves; stale worker reports ─────────────────────────────────

describe('a loop that ends by itself', () => {
  it('returns: cleanup, then idle, finished with reason returned', () => {
    const rig = rigIn('running');
    rig.send(worker.ended('returned'));
    expect(rig.phase()).toBe('cleanup');
    expect(rig.finished()).toEqual([{ sessionId: 's1', reason: 'returned' }]);
    rig.send(worker.cleaned());
    expect(rig.phase()).toBe('idle');
    expect(rig.context.lastEnd).toEqual({ sessionId: 's1', reason: 'returned' });
  });

  it('throws: cleanup, then idle, finished with reason error and the error', () => {
    const rig = rigIn('running');
    const error = errorValue('loop_failed', 'NaN in state');
    rig.send(worker.ended('error', 's1', error));
    expect(rig.phase()).toBe('cleanup');
    expect(rig.finished()).toEqual([{ sessionId: 's1', reason: 'error', error }]);
    rig.send(worker.cleaned());
    expect(rig.phase()).toBe('idle');
  });

  it('throws while being stopped: the error wins over the stop', () => {
    const rig = rigIn('stopping');
    const error = errorValue('loop_failed');
    rig.send(worker.ended('error', 's1', error));
    expect(rig.finished()).toEqual([{ sessionId: 's1', reason: 'error', error }]);
  });

  it('ends before the worker reported it started', () => {
    const rig = rigIn('starting');
    rig.send(worker.ended('error', 's1', errorValue('loop_failed')));
    expect(rig.phase()).toBe('cleanup');
    expect(rig.finished().map((e) => e.reason)).toEqual(['error']);
  });
});

describe('stale worker reports (another session id) are ignored', () => {
  it.each([
    { phase: 'starting', event: worker.started('s0') },
    { phase: 'starting', event: worker.ended('returned', 's0') },
    { phase: 'running', event: worker.ended('returned', 's0') },
    { phase: 'running', event: worker.ended('error', 's0', errorValue('loop_failed')) },
    { phase: 'stopping', event: worker.ended('returned', 's0') },
    { phase: 'cleanup', event: worker.cleaned('s0') },
  ] satisfies Array<{ phase: ReachablePhase; event: RuntimeEvent }>)('$phase ignores $event.type for s0', ({ phase, event }) => {
    const rig = rigIn(phase);
    const before = rig.snapshot;
    const emitted = rig.emitted.length;
    rig.send(event);
    expect(rig.snapshot.value).toEqual(before.value);
    expect(rig.snapshot.context).toEqual(before.context);
    expect(rig.emitted).toHaveLength(emitted);
  });
});

// ── 4. supervision of sessions: stop deadline, start timeout, cleanup timeout ───────────────

describe('a loop that ignores stop', () => {
  it('is killed at the stop deadline: a fresh inference actor loads the model again', () => {
    const rig = rigIn('stopping');
    const first = rig.worker;

    rig.elapse(LIMITS.stopDeadlineMs - 1);
    expect(rig.phase()).toBe('stopping');
    expect(rig.finished()).toEqual([]);

    rig.elapse(1);
    expect(rig.finished()).toEqual([
      { sessionId: 's1', reason: 'killed', error: errorValue('timeout', 'the loop ignored stop past the deadline') },
    ]);
    expect(rig.phase()).toBe('loading');
    expect(rig.context.workerStarts).toBe(2);
    expect(rig.workers).toHaveLength(2);
    expect(first.stopped).toBe(true);
    expect(rig.worker.stopped).toBe(false);
    expect(rig.context.session).toBeNull();

    rig.send(worker.ready());
    expect(rig.phase()).toBe('idle');
    rig.accept(req.start(BOB, 's2'));
    expect(rig.phase()).toBe('starting');
    expect(rig.worker.received).toEqual([{ type: 'session.start', sessionId: 's2' }]);
    expect(first.received.some((m) => m.type === 'session.start' && m.sessionId === 's2')).toBe(false);
  });

  it('a loop that honours stop in time is not killed', () => {
    const rig = rigIn('stopping');
    rig.elapse(LIMITS.stopDeadlineMs - 1);
    rig.send(worker.ended('returned'));
    rig.elapse(2); // past the deadline, well before the cleanup timeout
    expect(rig.phase()).toBe('cleanup');
    expect(rig.finished().map((e) => e.reason)).toEqual(['stopped']);
    expect(rig.context.workerStarts).toBe(1);
  });
});

describe('start and cleanup timeouts', () => {
  it('a session that never starts is killed at the start timeout and the worker replaced', () => {
    const rig = rigIn('starting');
    rig.elapse(LIMITS.startTimeoutMs - 1);
    expect(rig.phase()).toBe('starting');
    rig.elapse(1);
    expect(rig.finished()).toEqual([
      { sessionId: 's1', reason: 'killed', error: errorValue('timeout', 'the session did not start in time') },
    ]);
    expect(rig.phase()).toBe('loading');
    expect(rig.context.workerStarts).toBe(2);
    expect(rig.workers[0]!.stopped).toBe(true);
  });

  it('the start timeout does not fire once the session runs', () => {
    const rig = rigIn('running');
    rig.elapse(LIMITS.startTimeoutMs * 2);
    expect(rig.phase()).toBe('running');
  });

  it('a hanging cleanup replaces the worker without finishing the session twice', () => {
    const rig = rigIn('cleanup');
    rig.elapse(LIMITS.cleanupTimeoutMs - 1);
    expect(rig.phase()).toBe('cleanup');
    rig.elapse(1);
    expect(rig.phase()).toBe('loading');
    expect(rig.context.workerStarts).toBe(2);
    expect(rig.context.session).toBeNull();
    expect(rig.finished()).toHaveLength(1);
  });
});

// ── 5. loading ───────────────────────────────────────────────────────────────────────────────

describe('loading the model', () => {
  it('fails at the load timeout with load_failed', () => {
    const rig = rigIn('loading');
    rig.elapse(LIMITS.loadTimeoutMs - 1);
    expect(rig.phase()).toBe('loading');
    rig.elapse(1);
    expect(rig.phase()).toBe('failed');
    expect(rig.context.loadError).toEqual(errorValue('load_failed', 'load timed out'));
    expect(rig.worker.stopped).toBe(true);
  });

  it('fails with the worker’s own error on worker.failed', () => {
    const rig = rigIn('loading');
    const error = errorValue('load_failed', 'no such file: model.onnx');
    rig.send(worker.failed(error));
    expect(rig.phase()).toBe('failed');
    expect(rig.context.loadError).toEqual(error);
  });

  it('refuses a start after a failed load with load_failed and the failure’s cause', () => {
    const rig = rigIn('loading');
    rig.send(worker.failed(errorValue('load_failed', 'no such file: model.onnx')));
    expect(rig.request(req.start())).toMatchObject({ type: 'request.refused', error: errorValue('load_failed', 'no such file: model.onnx') });
    // A worker that died while loading: still load_failed, with the death as the cause.
    const crashed = rigIn('loading');
    crashed.send(worker.exited());
    expect(crashed.request(req.start())).toMatchObject({ type: 'request.refused', error: errorValue('load_failed', CRASH.message) });
  });

  it('fails, without respawning, when the worker exits while loading', () => {
    const rig = rigIn('loading');
    rig.send(worker.exited());
    expect(rig.phase()).toBe('failed');
    expect(rig.context.loadError).toEqual(CRASH);
    expect(rig.context.workerStarts).toBe(1);
    expect(rig.workers).toHaveLength(1);
    expect(rig.finished()).toEqual([]);
    rig.elapse(LIMITS.loadTimeoutMs * 10);
    expect(rig.phase()).toBe('failed');
  });

  it('reloads from failed with a fresh inference actor, and clears the error once ready', () => {
    const rig = rigIn('failed');
    rig.send({ type: 'runtime.reload' });
    expect(rig.phase()).toBe('loading');
    expect(rig.context.workerStarts).toBe(2);
    expect(rig.workers).toHaveLength(2);
    expect(rig.workers[0]!.stopped).toBe(true);
    rig.send(worker.ready());
    expect(rig.phase()).toBe('idle');
    expect(rig.context.loadError).toBeNull();
  });

  it('ignores runtime.reload outside failed', () => {
    const rig = rigIn('running');
    rig.send({ type: 'runtime.reload' });
    expect(rig.phase()).toBe('running');
    expect(rig.context.workerStarts).toBe(1);
  });
});

// ── 6. the worker dies ───────────────────────────────────────────────────────────────────────

describe('a worker that dies under a session', () => {
  it.each(['starting', 'running', 'stopping'] as const)('%s: finished as crashed, then a fresh worker loads', (phase) => {
    const rig = rigIn(phase);
    rig.send(worker.exited());
    expect(rig.finished()).toEqual([{ sessionId: 's1', reason: 'crashed', error: CRASH }]);
    expect(rig.phase()).toBe('loading');
    expect(rig.context.session).toBeNull();
    expect(rig.context.workerStarts).toBe(2);
    expect(rig.workers).toHaveLength(2);
    expect(rig.workers[0]!.stopped).toBe(true);

    rig.send(worker.ready());
    rig.accept(req.start(BOB, 's2'));
    expect(rig.worker.received).toEqual([{ type: 'session.start', sessionId: 's2' }]);
  });

  // The session already finished when cleanup began; a crash now must not announce it again.
  it('during cleanup: replaced, without finishing the session a second time', () => {
    const rig = rigIn('cleanup');
    rig.send(worker.exited());
    expect(rig.phase()).toBe('loading');
    expect(rig.context.workerStarts).toBe(2);
    expect(rig.finished()).toEqual([{ sessionId: 's1', reason: 'returned' }]);
  });

  // No session: nothing may be announced as finished (the chart would emit `end: null`).
  it('while idle: replaced, and no session is announced as finished', () => {
    const rig = rigIn('idle');
    rig.send(worker.exited());
    expect(rig.phase()).toBe('loading');
    expect(rig.context.workerStarts).toBe(2);
    expect(rig.finished()).toEqual([]);
  });

  it('while idle after a session: the last session is not announced again', () => {
    const rig = rigIn('cleanup');
    rig.send(worker.cleaned());
    rig.send(worker.exited());
    expect(rig.phase()).toBe('loading');
    expect(rig.finished()).toHaveLength(1);
  });
});

// ── the owner's presence: orphaned sessions ──────────────────────────────────────────────────

const ownerLeft = (sessionId = 's1'): RuntimeEvent => ({ type: 'owner.left', sessionId });
const ownerReturned = (sessionId = 's1'): RuntimeEvent => ({ type: 'owner.returned', sessionId });

describe('a session whose owner is gone', () => {
  it('runs on until the orphan timeout, then is stopped with reason orphaned', () => {
    const rig = rigIn('running');
    rig.send(ownerLeft());
    expect(rig.snapshot.matches({ alive: { lifecycle: { session: { running: 'orphaned' } } } })).toBe(true);
    expect(rig.phase()).toBe('running');
    rig.accept(req.command(ALICE)); // still the owner's session

    rig.elapse(LIMITS.orphanTimeoutMs - 1);
    expect(rig.phase()).toBe('running');
    rig.elapse(1);
    expect(rig.phase()).toBe('stopping');
    expect(rig.worker.received.at(-1)).toEqual({ type: 'session.stop', sessionId: 's1', reason: 'orphaned' });

    rig.send(worker.ended('returned'));
    expect(rig.finished()).toEqual([{ sessionId: 's1', reason: 'orphaned' }]);
  });

  it('is not stopped if the owner returns in time', () => {
    const rig = rigIn('running');
    rig.send(ownerLeft());
    rig.elapse(LIMITS.orphanTimeoutMs - 1);
    rig.send(ownerReturned());
    expect(rig.snapshot.matches({ alive: { lifecycle: { session: { running: 'attended' } } } })).toBe(true);
    rig.elapse(LIMITS.orphanTimeoutMs * 2);
    expect(rig.phase()).toBe('running');
  });

  it('starts its orphan clock once running when the owner left while it was starting', () => {
    const rig = rigIn('starting');
    rig.send(ownerLeft());
    rig.send(worker.started());
    expect(rig.snapshot.matches({ alive: { lifecycle: { session: { running: 'orphaned' } } } })).toBe(true);
    rig.elapse(LIMITS.orphanTimeoutMs);
    expect(rig.phase()).toBe('stopping');
  });

  it.each(Object.keys(REQUESTS) as RequestKind[])('answers %s as in running', (kind) => {
    const rig = rigIn('running');
    rig.send(ownerLeft());
    const event = REQUESTS[kind]();
    const answer = rig.request(event);
    const outcome = MATRIX.running[kind];
    if (outcome === 'accepted') expect(answer.type).toBe('request.accepted');
    else expect(answer).toMatchObject({ type: 'request.refused', error: { code: outcome } });
  });

  it('ignores presence reports about another session, and outside a session', () => {
    const rig = rigIn('running');
    rig.send(ownerLeft('s0'));
    expect(rig.snapshot.matches({ alive: { lifecycle: { session: { running: 'attended' } } } })).toBe(true);
    expect(rig.context.ownerAway).toBe(false);

    const idle = rigIn('idle');
    idle.send(ownerLeft('s1'));
    expect(idle.context.ownerAway).toBe(false);
    expect(idle.phase()).toBe('idle');
  });

  it('a new session starts attended even if the last owner left', () => {
    const rig = rigIn('running');
    rig.send(ownerLeft());
    rig.send(worker.ended('returned')).send(worker.cleaned());
    rig.accept(req.start(BOB, 's2'));
    rig.send(worker.started('s2'));
    expect(rig.snapshot.matches({ alive: { lifecycle: { session: { running: 'attended' } } } })).toBe(true);
    rig.elapse(LIMITS.orphanTimeoutMs * 2);
    expect(rig.phase()).toBe('running');
  });
});

// ── 7. shutdown ──────────────────────────────────────────────────────────────────────────────

describe('shutdown', () => {
  it('from idle: the worker is told to close, then the chart is done', () => {
    const rig = rigIn('idle');
    rig.send({ type: 'runtime.shutdown' });
    expect(rig.phase()).toBe('closing');
    expect(rig.worker.received.at(-1)).toEqual({ type: 'worker.close' });
    expect(rig.context.shutdownRequested).toBe(true);

    rig.send(worker.closed());
    expect(rig.phase()).toBe('shutdown');
    expect(rig.snapshot.status).toBe('done');
    expect(rig.worker.stopped).toBe(true);
    expect(rig.context.workerStarts).toBe(1);
  });

  // The worker may be inside ONNX Runtime's native session creation, where ending its thread
  // aborts the process: the chart waits for its `closed` (it ends that call first), not for the
  // close timeout, and only the load's own timeout ends the wait.
  it('from loading: closes the worker early and waits for its closed; its ready changes nothing', () => {
    const rig = rigIn('loading');
    rig.send({ type: 'runtime.shutdown' });
    expect(rig.phase()).toBe('closing');
    expect(rig.snapshot.matches({ alive: { lifecycle: { loading: 'closingEarly' } } })).toBe(true);
    expect(rig.worker.received).toEqual([{ type: 'worker.close' }]);
    expect(rig.refuse(req.start(BOB, 's2')).code).toBe('shutting_down');
    rig.elapse(LIMITS.loadTimeoutMs - 1);
    rig.send(worker.ready()); // the load ended before the worker took the close
    expect(rig.phase()).toBe('closing');
    expect(rig.context.model).toBeNull();
    expect(rig.worker.stopped).toBe(false);
    expect(rig.worker.received).toEqual([{ type: 'worker.close' }]); // told once
    rig.send(worker.closed());
    expect(rig.snapshot.status).toBe('done');
    expect(rig.worker.stopped).toBe(true);
  });

  it('from loading: the wait ends at the load timeout, counted from the load\'s start (a wedged load: the thread is ended)', () => {
    const rig = rigIn('loading', { ...LIMITS, loadTimeoutMs: 10_000, closeTimeoutMs: 1_000 });
    rig.elapse(4_000);
    rig.send({ type: 'runtime.shutdown' });
    rig.elapse(5_999); // far past the close timeout: closing early is not bound by it
    expect(rig.phase()).toBe('closing');
    expect(rig.worker.stopped).toBe(false);
    rig.elapse(1);
    expect(rig.snapshot.status).toBe('done');
    expect(rig.worker.stopped).toBe(true);
    expect(rig.context.loadError).toEqual(errorValue('load_failed', 'load timed out'));
    expect(rig.workers).toHaveLength(1);
  });

  it('from loading: a load that fails meanwhile, or a worker that exits, ends in shutdown, not failed', () => {
    const failing = rigIn('loading');
    failing.send({ type: 'runtime.shutdown' });
    failing.send(worker.failed());
    expect(failing.phase()).toBe('closing');
    failing.send(worker.closed());
    expect(failing.snapshot.status).toBe('done');

    const dying = rigIn('loading');
    dying.send({ type: 'runtime.shutdown' });
    dying.send(worker.exited());
    expect(dying.snapshot.status).toBe('done');
    expect(dying.workers).toHaveLength(1);
  });

  it('from running: stops the session with reason shutdown, cleans up, then closes instead of idling', () => {
    const rig = rigIn('running');
    rig.send({ type: 'runtime.shutdown' });
    expect(rig.phase()).toBe('stopping');
    expect(rig.worker.received.at(-1)).toEqual({ type: 'session.stop', sessionId: 's1', reason: 'shutdown' });
    expect(rig.refuse(req.start(BOB, 's2')).code).toBe('shutting_down');

    rig.send(worker.ended('returned'));
    expect(rig.phase()).toBe('cleanup');
    expect(rig.finished()).toEqual([{ sessionId: 's1', reason: 'shutdown' }]);

    rig.send(worker.cleaned());
    expect(rig.phase()).toBe('closing');
    expect(rig.worker.received.at(-1)).toEqual({ type: 'worker.close' });
    expect(rig.refuse(req.start(BOB, 's2')).code).toBe('shutting_down');

    rig.send(worker.closed());
    expect(rig.snapshot.status).toBe('done');
  });

  it('from starting: stops the session with reason shutdown', () => {
    const rig = rigIn('starting');
    rig.send({ type: 'runtime.shutdown' });
    expect(rig.phase()).toBe('stopping');
    expect(rig.worker.received.at(-1)).toEqual({ type: 'session.stop', sessionId: 's1', reason: 'shutdown' });
  });

  it('requested during cleanup: closes once cleanup ends', () => {
    const rig = rigIn('cleanup');
    rig.send({ type: 'runtime.shutdown' });
    expect(rig.phase()).toBe('cleanup');
    rig.send(worker.cleaned());
    expect(rig.phase()).toBe('closing');
  });

  it('requested while stopping, then the loop ignores stop: killed and shut down, not reloaded', () => {
    const rig = rigIn('stopping');
    rig.send({ type: 'runtime.shutdown' });
    expect(rig.phase()).toBe('stopping');
    rig.elapse(LIMITS.stopDeadlineMs);
    expect(rig.finished().map((e) => e.reason)).toEqual(['killed']);
    expect(rig.phase()).toBe('shutdown');
    expect(rig.snapshot.status).toBe('done');
    expect(rig.workers).toHaveLength(1);
    expect(rig.worker.stopped).toBe(true);
  });

  it('a worker that never answers close is terminated at the close timeout', () => {
    const rig = rigIn('closing');
    rig.elapse(LIMITS.closeTimeoutMs - 1);
    expect(rig.phase()).toBe('closing');
    rig.elapse(1);
    expect(rig.snapshot.status).toBe('done');
    expect(rig.worker.stopped).toBe(true);
  });

  it('a worker that exits while closing ends the shutdown (no respawn)', () => {
    const rig = rigIn('closing');
    rig.send(worker.exited());
    expect(rig.snapshot.status).toBe('done');
    expect(rig.context.workerStarts).toBe(1);
    expect(rig.finished()).toEqual([]);
  });

  it('from failed: done at once', () => {
    const rig = rigIn('failed');
    rig.send({ type: 'runtime.shutdown' });
    expect(rig.snapshot.status).toBe('done');
  });

  it('refuses a start during closing with shutting_down', () => {
    const rig = rigIn('closing');
    const start = req.start(BOB, 's2');
    expect(rig.request(start)).toEqual({
      type: 'request.refused',
      requestId: start.requestId,
      error: errorValue('shutting_down'),
    });
  });
});

// ── 8. every state is reached by some path ───────────────────────────────────────────────────

/**
 * xstate names a delayed transition's event `xstate.after.<delay>.<state node id>`. It is not part
 * of the machine's event type, hence the one cast; the test below checks the names against the
 * machine's own event descriptors, and replaying the paths against a live actor with fake timers
 * checks that they are the events the timers really raise.
 */
function delayed(delay: keyof typeof DELAY_LIMIT, stateId: string): RuntimeEvent {
  return { type: `xstate.after.${delay}.${stateId}` } as unknown as RuntimeEvent;
}

const DELAY_LIMIT = {
  loadTimeout: 'loadTimeoutMs',
  startTimeout: 'startTimeoutMs',
  stopDeadline: 'stopDeadlineMs',
  cleanupTimeout: 'cleanupTimeoutMs',
  closeTimeout: 'closeTimeoutMs',
  orphanTimeout: 'orphanTimeoutMs',
  heartbeatTimeout: 'heartbeatTimeoutMs',
} as const satisfies Record<string, keyof Limits>;

function isDelay(name: string): name is keyof typeof DELAY_LIMIT {
  return Object.hasOwn(DELAY_LIMIT, name);
}

const GRAPH_EVENTS: RuntimeEvent[] = [
  req.start(ALICE, 's1'),
  req.stop(ALICE),
  req.stop(BOB),
  req.stop(),
  req.command(ALICE, VALID),
  req.command(BOB, VALID),
  req.command(ALICE, INVALID),
  req.resume('user-1'),
  worker.ready(),
  { type: 'worker.liveness', silentMs: 0 },
  { type: 'worker.liveness', silentMs: LIMITS.heartbeatTimeoutMs },
  worker.failed(),
  worker.started('s1'),
  worker.started('s0'),
  worker.ended('returned', 's1'),
  worker.ended('error', 's1', errorValue('loop_failed')),
  worker.ended('returned', 's0'),
  worker.cleaned('s1'),
  worker.closed(),
  worker.exited(),
  { type: 'runtime.shutdown' },
  { type: 'runtime.reload' },
  { type: 'owner.left', sessionId: 's1' },
  { type: 'owner.left', sessionId: 's0' },
  { type: 'owner.returned', sessionId: 's1' },
  delayed('loadTimeout', 'framehost.alive.lifecycle.loading'),
  delayed('startTimeout', 'framehost.alive.lifecycle.session.starting'),
  delayed('stopDeadline', 'framehost.alive.lifecycle.session.stopping'),
  delayed('cleanupTimeout', 'framehost.alive.lifecycle.cleanup'),
  delayed('closeTimeout', 'framehost.alive.lifecycle.closing'),
  delayed('orphanTimeout', 'framehost.alive.lifecycle.session.running.orphaned'),
  delayed('heartbeatTimeout', 'framehost.alive.watchdog.watching'),
];

/** Identify states by value and context, minus the counters that would make the graph infinite. */
function serializeState(snapshot: Snapshot): string {
  const { workerStarts: _starts, sessionsStarted: _sessions, ...rest } = snapshot.context;
  return JSON.stringify({ value: snapshot.value, context: rest });
}

/** `['alive', 'lifecycle', 'idle']` → `{ alive: { lifecycle: 'idle' } }`. */
function stateValueOf(path: readonly string[]): string | Record<string, unknown> {
  const [head, ...tail] = path;
  if (head === undefined) throw new Error('empty state path');
  return tail.length === 0 ? head : { [head]: stateValueOf(tail) };
}

describe('the heartbeat watchdog', () => {
  const HEARTBEAT = { ...LIMITS, heartbeatTimeoutMs: 10_000, stopDeadlineMs: 60_000, orphanTimeoutMs: 60_000, cleanupTimeoutMs: 60_000 };
  /** A rig whose fake actor answers the watchdog's probes from the beats it saw. */
  const watched = (phase: ReachablePhase, limits: Partial<Limits> = HEARTBEAT): Rig => rigIn(phase, limits, true);
  const probes = (rig: Rig): number => rig.workers.reduce((n, w) => n + w.received.filter((m) => m.type === 'worker.probe').length, 0);

  it('is quiet while loading: only loadTimeout supervises a load', () => {
    const rig = watched('loading', { ...HEARTBEAT, loadTimeoutMs: 30_000 });
    rig.elapse(20_000);
    expect(rig.phase()).toBe('loading');
    expect(rig.snapshot.matches({ alive: { watchdog: 'quiet' } })).toBe(true);
    expect(probes(rig)).toBe(0);
  });

  it('stays calm while heartbeats arrive within the timeout, and asks about them only once per timeout', () => {
    const rig = watched('running');
    for (let i = 0; i < 50; i++) {
      rig.elapse(900);
      rig.beat(); // about once a second, as the worker does
    }
    expect(rig.phase()).toBe('running');
    expect(rig.context.workerStarts).toBe(1);
    expect(rig.finished()).toEqual([]);
    // 45 s and 50 beats: the chart probed about once per 10 s timeout, never per beat (issue 11:
    // every beat was a chart event, two inspection messages a second).
    expect(probes(rig)).toBeGreaterThanOrEqual(4);
    expect(probes(rig)).toBeLessThanOrEqual(5);
  });

  it('replaces a silent worker exactly one timeout after its last beat: the session ends crashed, a fresh worker loads the model', () => {
    const rig = watched('running');
    rig.elapse(9_000);
    rig.beat();
    rig.elapse(9_999);
    expect(rig.phase()).toBe('running');
    rig.elapse(1);
    expect(rig.finished()).toEqual([
      { sessionId: 's1', reason: 'crashed', error: errorValue('worker_crashed', 'the worker stopped answering (no heartbeat)') },
    ]);
    expect(rig.phase()).toBe('loading');
    expect(rig.context.workerStarts).toBe(2);
    expect(rig.context.session).toBeNull();
  });

  it('replaces a silent idle worker without announcing any session', () => {
    const rig = watched('idle');
    rig.elapse(9_999);
    expect(rig.phase()).toBe('idle');
    rig.elapse(1);
    expect(rig.phase()).toBe('loading');
    expect(rig.context.workerStarts).toBe(2);
    expect(rig.finished()).toEqual([]);
  });

  it('does not finish a session twice when the worker goes silent during cleanup', () => {
    const rig = watched('cleanup');
    const before = rig.finished().length;
    rig.elapse(10_000);
    expect(rig.finished()).toHaveLength(before);
    expect(rig.context.session).toBeNull();
  });

  it('watches the fresh worker from its own ready: silent a full timeout, it is replaced too', () => {
    const rig = watched('idle', { ...HEARTBEAT, loadTimeoutMs: 30_000 });
    rig.elapse(10_000); // silent: replaced
    expect(rig.phase()).toBe('loading');
    rig.elapse(5_000);
    rig.send(worker.ready());
    rig.beat();
    rig.elapse(9_999);
    expect(rig.phase()).toBe('idle');
    expect(rig.context.workerStarts).toBe(2);
    rig.elapse(1);
    expect(rig.phase()).toBe('loading');
    expect(rig.context.workerStarts).toBe(3);
  });
});

describe('path coverage', () => {
  const machine = runtimeMachine.provide({ actors: { inference: fakeInference([]) } });
  const paths = getShortestPaths(machine, { input: { limits: LIMITS }, events: GRAPH_EVENTS, serializeState });

  it('the event list has an instance of every event the machine handles, and nothing else', () => {
    const handled = new Set(machine.root.events);
    const listed = new Set(GRAPH_EVENTS.map((e) => e.type));
    expect(listed).toEqual(handled);
    expect(new Set(Object.keys(machine.implementations.delays))).toEqual(new Set(Object.keys(DELAY_LIMIT)));
  });

  it('reaches every phase except the transient recovering', () => {
    const reached = new Set(paths.map((p) => phaseOf(p.state)));
    expect(reached).toEqual(new Set(PHASES.filter((p) => p !== 'recovering')));
  });

  it('reaches every leaf state of the chart except the transient recovering', () => {
    const leaves = getStateNodes(machine.root).filter((node) => node.type === 'atomic' || node.type === 'final');
    const unreached = leaves
      .filter((node) => node.key !== 'recovering')
      .filter((node) => !paths.some((p) => p.state.matches(stateValueOf(node.path) as Snapshot['value'])))
      .map((node) => node.id);
    expect(leaves.length).toBeGreaterThan(8);
    expect(unreached).toEqual([]);
  });

  it('never rests in recovering', () => {
    expect(paths.some((p) => p.state.matches('recovering'))).toBe(false);
  });

  // The graph is computed with pure transitions; replaying each path on a live actor (real
  // invoke, fake timers for the delays) checks that the live chart goes the same way.
  it('a live actor follows every path the same way', () => {
    expect(paths.length).toBeGreaterThan(20);
    for (const path of paths) {
      const rig = new Rig(LIMITS);
      rigs.push(rig);
      for (const step of path.steps) {
        const type: string = step.event.type; // the first step's is xstate.init, outside RuntimeEvent
        if (type === 'xstate.init') continue;
        if (type.startsWith('xstate.after.')) {
          const delay = type.split('.')[2] ?? '';
          if (!isDelay(delay)) throw new Error(`unknown delay in ${type}`);
          // Elapsing the 60 s watchdog would fire every shorter pending delay first, so its
          // event is delivered as XState delivers it when the timer fires; the watchdog's
          // timing has its own fake-clock tests.
          if (delay === 'heartbeatTimeout') rig.actor.send(step.event as never);
          else rig.elapse(LIMITS[DELAY_LIMIT[delay]]);
        } else {
          rig.send(step.event);
        }
        expect(rig.snapshot.value, `${type} in ${JSON.stringify(path.steps.map((s) => s.event.type))}`).toEqual(step.state.value);
      }
      rig.actor.stop();
    }
  });
});

// ── access tokens: whom a session belongs to ────────────────────────────────────────────────

describe('sessions of token users', () => {
  const startAs = (sub: string, expiresAt: number, presentedAt: number): RequestEvent => ({
    type: 'session.start',
    requestId: nextRequestId(),
    owner: ALICE,
    sessionId: 's1',
    subject: { sub, expiresAt, presentedAt },
  });

  it('an expired token starts no session (token_expired), and nothing changes', () => {
    const rig = rigIn('idle');
    const before = rig.snapshot;
    expect(rig.refuse(startAs('user-1', 1_000, 1_000)).code).toBe('token_expired');
    expect(rig.snapshot.value).toEqual(before.value);
    expect(rig.snapshot.context).toEqual(before.context);
    expect(rig.worker.received).toHaveLength(0);
  });

  it('the session belongs to its sub: that user may resume it, another may not; commands go on after the token expires', () => {
    const rig = rigIn('idle');
    rig.accept(startAs('user-1', 2_000, 1_000));
    expect(rig.context.session).toEqual({ id: 's1', owner: ALICE, sub: 'user-1' });
    rig.send(worker.started('s1'));
    expect(rig.refuse(req.resume('user-2')).code).toBe('not_owner');
    expect(rig.accept(req.resume('user-1')).sessionId).toBe('s1');
    // The chart never looks at the clock for a running session: an expired token ends nothing.
    vi.advanceTimersByTime(5_000);
    expect(rig.accept(req.command(ALICE)).sessionId).toBe('s1');
  });
});

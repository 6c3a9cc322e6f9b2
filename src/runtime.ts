/**
 * `createRuntime`: the chart, the inference actor and the model's declarations put together,
 * for any caller: the Socket.IO transport, the headless runner, or another Node service that
 * embeds framehost without a network.
 *
 * Requests (`start`, `stop`, `command`) become chart events and return the chart's answer at
 * once, as a value: XState processes an event synchronously, and the chart emits exactly one
 * `request.accepted` or `request.refused` per request (runtime.machine.ts).
 */
import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { createActor, type Actor, type InspectionEvent, type SnapshotFrom } from 'xstate';
import { errorValue, fail, FramehostError, type ErrorValue, type Result } from './errors.ts';
import { acceptsInput, isSessionOwner, runtimeMachine, type RuntimeMachine } from './machines/runtime.machine.ts';
import { createTrackShare, frameBytes, TrackWriter } from './actors/input-track.ts';
import { wallClockMs, type FrameMessage } from './actors/protocol.ts';
import { phaseOf, type Phase } from './machines/phase.ts';
import { DEFAULT_LIMITS, type EndReason, type Limits, type ModelInfo, type RequestSubject, type RuntimeEvent, type SessionEnd, type SessionRecord } from './machines/types.ts';
import { createInferenceActor, type WorkerMemory } from './actors/inference.actor.ts';
import { eraseModel, type ErasedModel, type InputTrackSpec, type JsonValue } from './model/api.ts';
import { loadModelModule, modelSource, modelUrl } from './model/load.ts';
import { capabilitiesOf, checkCommand, type Capabilities } from './model/capabilities.ts';
import { ControlValues, type ControlSnapshot } from './model/controls.ts';
import type { CreateSessionOptions } from './gpu/session.ts';
import { Emitter } from './util/emitter.ts';
import { logDestination } from './util/log-output.ts';
import { createRecorder, type JournalOptions, type JournalWritten, type SessionJournal } from './journal/recorder.ts';
import type { ReplayScript } from './actors/loop-points.ts';

export interface RuntimeOptions {
  /** Model module path or URL; default: the built-in Gray-Scott world. */
  readonly model?: string;
  readonly modelOptions?: Readonly<Record<string, unknown>>;
  readonly ort?: Omit<CreateSessionOptions, 'probe'>;
  readonly limits?: Partial<Limits>;
  readonly logger?: Logger;
  /** Frames the worker may have in flight to the main thread before it drops (counted). */
  readonly maxFramesInFlight?: number;
  /** Warn in the log when the process's resident memory passes this many MiB (default 0: off). */
  readonly memoryWarnMb?: number;
  /** Cap on the worker's JavaScript heap in MiB; past it the worker dies (`crashed`) and is replaced. */
  readonly workerHeapMb?: number;
  /** XState inspection hook (the Stately inspector's `inspect`). */
  readonly inspect?: (event: InspectionEvent) => void;
  /** Write a journal of every session into a folder (README, "Session journal and replay"). */
  readonly record?: JournalOptions;
  /** Replay mode (used by `framehost replay`, which runs one session): the worker plays this script in every session. */
  readonly replay?: ReplayScript;
}

/** A frame as the worker sent it (see FrameMessage for the fields), its bytes as a view. */
export interface RuntimeFrame extends Omit<FrameMessage, 'type' | 'data' | 'points'> {
  readonly data: Uint8Array;
}

export interface RuntimeEvents {
  frame: RuntimeFrame;
  message: { sessionId: string; data: JsonValue };
  'command.failed': { sessionId: string; requestId: string; error: ErrorValue };
  /** A command was accepted: the session's command state as it now is. */
  controls: { sessionId: string; controls: ControlSnapshot };
  'session.began': SessionRecord;
  'session.finished': SessionEnd & { frames: number; dropped: number };
  phase: { phase: Phase; previous: Phase };
  /** A session's journal file is complete (only with the `record` option). */
  'journal.written': JournalWritten;
  /** The inference worker's memory, about once a second (its heartbeat): where a process's RSS goes. */
  'worker.memory': WorkerMemory;
}

export interface SessionStatus {
  readonly id: string;
  readonly frames: number;
  readonly dropped: number;
  /** Input frames accepted in this session. */
  readonly inputs: number;
  readonly ownerAway: boolean;
  /** While the owner is away: when the orphan timeout stops the session, ms since the epoch. */
  readonly orphanStopsAt: number | null;
  /** The command state as accepted so far (src/model/controls.ts). */
  readonly controls: ControlSnapshot;
}

export interface RuntimeStatus {
  readonly phase: Phase;
  readonly model: ModelInfo | null;
  readonly session: SessionStatus | null;
  readonly lastEnd: SessionEnd | null;
  readonly loadError: ErrorValue | null;
  /** Worker generations: 1 unless a stuck loop or a crash forced a reload. */
  readonly workerStarts: number;
  readonly sessionsStarted: number;
}

export interface Runtime {
  readonly actor: Actor<RuntimeMachine>;
  readonly capabilities: Capabilities;
  readonly log: Logger;
  /**
   * Resolves once the model is loaded; rejects if it failed to load (`load_failed`), or with
   * `shutting_down` when shutdown() came first.
   */
  ready(): Promise<ModelInfo>;
  /**
   * After a failed load: load the model again in a fresh worker (the runtime never retries by
   * itself); resolves or rejects as ready(). In any other state it is ready().
   */
  reload(): Promise<ModelInfo>;
  /** `subject`: the access token's user, to whom the session then belongs (see `resume`). */
  start(options?: { owner?: string; subject?: RequestSubject }): Result<{ sessionId: string }>;
  /** The session's user (token `sub`) takes control back; the caller then acts as its owner. */
  resume(options: { sub: string }): Result<{ sessionId: string }>;
  stop(options?: { owner?: string; reason?: EndReason }): Result;
  command(name: unknown, args: unknown, options?: { owner?: string }): Result<{ requestId: string }>;
  /**
   * Write the newest frame of an input track (owner only, while the session starts or runs).
   * The data is copied into the track's shared slot; the caller keeps its buffer.
   */
  publish(track: unknown, frame: InputFrameCandidate, options?: { owner?: string }): Result;
  /** The owner's connection left or came back: drives the chart's orphan timeout. */
  ownerPresence(sessionId: string, present: boolean): void;
  status(): RuntimeStatus;
  phase(): Phase;
  on<K extends keyof RuntimeEvents>(event: K, fn: (payload: RuntimeEvents[K]) => void): () => void;
  /** Resolves when the given session (default: the current one) has ended and been cleaned up. */
  whenSessionOver(sessionId?: string): Promise<SessionEnd | null>;
  /** Refuse new sessions, stop the running one within its deadline, release the model. */
  shutdown(): Promise<void>;
}

/** An input frame as a caller hands it in (checked against the track before use). */
export interface InputFrameCandidate {
  readonly data: unknown;
  readonly width: unknown;
  readonly height: unknown;
  readonly format: unknown;
}

/** A client's value in a message, without calling anything of it (a toString could be anything). */
function shown(v: unknown): string {
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : typeof v === 'string' ? JSON.stringify(v.slice(0, 12)) : typeof v;
}

function inputProblem(spec: InputTrackSpec, frame: InputFrameCandidate): string | undefined {
  if (typeof frame !== 'object' || frame === null) return 'a frame is { data, width, height, format }';
  if (frame.width !== spec.width || frame.height !== spec.height) return `expected ${spec.width}×${spec.height}, got ${shown(frame.width)}×${shown(frame.height)}`;
  if (frame.format !== spec.format) return `expected format ${spec.format}, got ${shown(frame.format)}`;
  if (!(frame.data instanceof Uint8Array)) return 'data must be bytes (a Uint8Array or Buffer)';
  if (frame.data.byteLength !== frameBytes(spec)) return `data has ${frame.data.byteLength} bytes; expected ${frameBytes(spec)}`;
  return undefined;
}

/** The owner used by the embedding API when the caller names none. */
export const LOCAL_OWNER = 'local';

export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const log = options.logger ?? pino({ level: process.env.FRAMEHOST_LOG_LEVEL ?? 'info' }, logDestination(1));
  const url = modelUrl(options.model);
  const model: ErasedModel = eraseModel(await loadModelModule(url));
  const capabilities = capabilitiesOf(model);
  const events = new Emitter<RuntimeEvents>((err, event) => log.error({ err, event }, 'runtime listener threw'));

  // Per-session counters, reset by construction: a new object per session.
  let counters: { id: string; frames: number; dropped: number; inputs: number; controls: ControlValues; awayAt: number | null; log: Logger; journal?: SessionJournal } | null = null;
  const recorder = options.record
    ? createRecorder(options.record, { name: model.name, version: model.version, source: modelSource(options.model), options: options.modelOptions ?? {}, inputs: model.inputs ?? {} }, log)
    : undefined;

  // Input tracks: model-scoped shared memory, emptied for every session (src/actors/input-track.ts).
  const tracks = new Map(Object.entries(model.inputs ?? {}).map(([name, spec]) => [name, new TrackWriter(createTrackShare(name, spec))]));
  const clearInputs = (): void => tracks.forEach((t) => t.clear());

  const inference = createInferenceActor({
    modelUrl: url,
    modelOptions: options.modelOptions ?? {},
    ort: options.ort ?? {},
    log,
    maxFramesInFlight: options.maxFramesInFlight,
    // Several beats per timeout, so one late beat never trips the watchdog.
    heartbeatIntervalMs: Math.max(20, Math.min(1000, Math.floor((options.limits?.heartbeatTimeoutMs ?? DEFAULT_LIMITS.heartbeatTimeoutMs) / 5))),
    memoryWarnMb: options.memoryWarnMb,
    workerHeapMb: options.workerHeapMb,
    inputs: [...tracks.values()].map((t) => t.share),
    ...(options.replay ? { replay: options.replay } : {}),
    sink: {
      frame(m: FrameMessage) {
        if (counters?.id !== m.sessionId) return; // a straggler from an ended session
        counters.frames += m.count;
        if (counters.log.isLevelEnabled('debug')) counters.log.debug({ seq: m.seq, bytes: m.data.byteLength }, 'frame');
        const { type: _type, data, points: _points, ...meta } = m;
        const frame = { ...meta, data: new Uint8Array(data) };
        counters.journal?.frame(frame);
        events.emit('frame', frame);
      },
      message(sessionId, data) {
        if (counters?.id !== sessionId) return;
        counters.journal?.message(data, counters.frames);
        events.emit('message', { sessionId, data });
      },
      commandFailed(sessionId, requestId, error) {
        if (counters?.id !== sessionId) return;
        counters.journal?.commandFailed(requestId, error);
        events.emit('command.failed', { sessionId, requestId, error });
      },
      sessionStats(sessionId, stats) {
        if (counters?.id !== sessionId) return;
        counters.dropped += stats.dropped;
        counters.journal?.checks(stats.checks, stats.stopCheck);
      },
      points(sessionId, points) {
        if (counters?.id === sessionId) counters.journal?.points(points);
      },
      workerMemory(memory) {
        events.emit('worker.memory', memory);
      },
    },
  });

  const actor = createActor(runtimeMachine.provide({ actors: { inference } }), {
    input: { limits: options.limits },
    ...(options.inspect ? { inspect: options.inspect } : {}),
  });

  // Replies to the request being sent right now (XState handles an event synchronously).
  let reply: { requestId: string; result?: Result<{ sessionId?: string }> } | null = null;
  actor.on('request.accepted', (e) => {
    if (reply?.requestId === e.requestId) reply.result = { ok: true, ...(e.sessionId ? { sessionId: e.sessionId } : {}) };
  });
  actor.on('request.refused', (e) => {
    if (reply?.requestId === e.requestId) reply.result = { ok: false, error: e.error };
  });
  actor.on('session.began', ({ session }) => {
    clearInputs();
    counters = { id: session.id, frames: 0, dropped: 0, inputs: 0, controls: new ControlValues(), awayAt: null, log: log.child({ sessionId: session.id }), ...(recorder ? { journal: recorder.open(session.id) } : {}) };
    counters.log.info({ owner: session.owner, ...(session.sub ? { sub: session.sub } : {}) }, 'session began');
    events.emit('session.began', session);
  });
  actor.on('session.finished', ({ end }) => {
    clearInputs();
    const c = counters?.id === end.sessionId ? counters : null;
    const summary = { ...end, frames: c?.frames ?? 0, dropped: c?.dropped ?? 0 };
    (c?.log ?? log).info({ reason: end.reason, error: end.error, frames: summary.frames, dropped: summary.dropped }, 'session ended');
    c?.journal?.finish(summary).then(
      (written) => events.emit('journal.written', written),
      (err: unknown) => log.warn({ err }, 'journal: finishing the file failed'),
    );
    events.emit('session.finished', summary);
  });

  let phase: Phase = 'loading';
  actor.subscribe({
    next: (snapshot) => {
      const next = phaseOf(snapshot);
      if (next === phase) return;
      const previous = phase;
      phase = next;
      if (next === 'idle' || next === 'failed' || next === 'shutdown') counters = null;
      log.info({ state: next, from: previous }, `state ${next}`);
      events.emit('phase', { phase: next, previous });
    },
    // An actor error with no observer is rethrown in a timer and kills Node (STYLE.md).
    error: (err) => log.error({ err }, 'runtime chart error'),
  });
  actor.start();

  function request(event: RuntimeEvent & { requestId: string }): Result<{ sessionId?: string }> {
    if (actor.getSnapshot().status !== 'active') return { ok: false, error: errorValue('shutting_down') };
    // XState queues an event sent while it processes another, so a request made from inside a
    // runtime listener could not be answered now: refuse it plainly rather than guess.
    if (reply) return { ok: false, error: errorValue('internal', 'a runtime request was made from inside a runtime listener; defer it (queueMicrotask)') };
    reply = { requestId: event.requestId };
    try {
      actor.send(event);
      return reply.result ?? { ok: false, error: errorValue('internal', `no answer to ${event.type}`) };
    } finally {
      reply = null;
    }
  }

  function snapshot(): SnapshotFrom<RuntimeMachine> {
    return actor.getSnapshot();
  }

  /**
   * Resolves once `check` answers. With an error observer of its own: xstate rethrows a chart's
   * error (and kills Node) when any subscriber lacks one, and a waiter must not hang on a dead chart.
   */
  function waitFor<T>(check: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const now = check();
      if (now !== undefined) return resolve(now);
      const sub = actor.subscribe({
        next: () => {
          const v = check();
          if (v !== undefined) {
            sub.unsubscribe();
            resolve(v);
          }
        },
        complete: () => {
          const v = check();
          if (v !== undefined) resolve(v);
        },
        error: (err: unknown) => reject(new FramehostError('internal', 'the runtime chart failed', { cause: err })),
      });
    });
  }

  const runtime: Runtime = {
    actor,
    capabilities,
    log,
    async ready() {
      const outcome = await waitFor((): { model: ModelInfo } | { error: ErrorValue } | undefined => {
        const s = snapshot();
        if (s.context.model && phaseOf(s) !== 'loading') return { model: s.context.model };
        // Shut down before the model loaded: nothing failed, and the caller is told so.
        const notLoaded = errorValue('shutting_down', 'the runtime shut down before the model loaded');
        if (s.matches('failed') || s.status === 'done') return { error: s.context.loadError ?? (s.context.shutdownRequested ? notLoaded : errorValue('load_failed')) };
        if (s.context.shutdownRequested) return { error: notLoaded };
        return undefined;
      });
      if ('error' in outcome) throw FramehostError.from(outcome.error);
      return outcome.model;
    },
    start(opts = {}) {
      const r = request({ type: 'session.start', requestId: randomUUID(), owner: opts.owner ?? LOCAL_OWNER, sessionId: randomUUID(), ...(opts.subject ? { subject: opts.subject } : {}) });
      return r.ok ? { ok: true, sessionId: r.sessionId! } : r;
    },
    resume(opts) {
      const r = request({ type: 'session.resume', requestId: randomUUID(), sub: opts.sub });
      return r.ok ? { ok: true, sessionId: r.sessionId! } : r;
    },
    stop(opts = {}) {
      const r = request({ type: 'session.stop', requestId: randomUUID(), ...(opts.owner ? { owner: opts.owner } : {}), reason: opts.reason ?? 'stopped' });
      return r.ok ? { ok: true } : r;
    },
    command(name, args, opts = {}) {
      const requestId = randomUUID();
      const command = checkCommand(model, name, args);
      const r = request({ type: 'session.command', requestId, owner: opts.owner ?? LOCAL_OWNER, command });
      if (r.ok && command.ok) {
        counters?.journal?.command(requestId, command.name, command.args);
        // The session's command state moves; every client's controls follow (src/model/controls.ts).
        if (counters) {
          counters.controls.accept(command.name, command.args, model.commands[command.name]!, counters.log);
          events.emit('controls', { sessionId: counters.id, controls: counters.controls.snapshot() });
        }
      }
      return r.ok ? { ok: true, requestId } : r;
    },
    publish(track, frame, opts = {}) {
      const writer = typeof track === 'string' ? tracks.get(track) : undefined;
      if (!writer) return fail('unknown_track', shown(track));
      const s = snapshot();
      if (!acceptsInput(s)) return fail('no_session');
      if (!isSessionOwner(s.context, opts.owner ?? LOCAL_OWNER)) return fail('not_owner');
      const problem = inputProblem(writer.share.spec, frame);
      if (problem) return fail('invalid_input', `${String(track)}: ${problem}`);
      const t = wallClockMs();
      const seq = writer.write(frame.data as Uint8Array, t);
      if (counters) {
        counters.inputs++;
        counters.journal?.input(writer.share.name, seq, frame.data as Uint8Array, t, counters.frames);
      }
      return { ok: true };
    },
    ownerPresence(sessionId, present) {
      // When the owner left, for the countdown the clients show (the chart's own timer decides).
      if (counters?.id === sessionId) counters.awayAt = present ? null : Date.now();
      if (snapshot().status === 'active') actor.send({ type: present ? 'owner.returned' : 'owner.left', sessionId });
    },
    status() {
      const s = snapshot();
      const c = counters && s.context.session?.id === counters.id ? counters : null;
      return {
        phase: phaseOf(s),
        model: s.context.model,
        session: c ? { id: c.id, frames: c.frames, dropped: c.dropped, inputs: c.inputs, ownerAway: s.context.ownerAway, orphanStopsAt: s.context.ownerAway && c.awayAt !== null ? c.awayAt + s.context.limits.orphanTimeoutMs : null, controls: c.controls.snapshot() } : null,
        lastEnd: s.context.lastEnd,
        loadError: s.context.loadError,
        workerStarts: s.context.workerStarts,
        sessionsStarted: s.context.sessionsStarted,
      };
    },
    phase: () => phaseOf(snapshot()),
    on: (event, fn) => events.on(event, fn),
    whenSessionOver(sessionId) {
      const id = sessionId ?? snapshot().context.session?.id;
      if (!id) return Promise.resolve(snapshot().context.lastEnd);
      return waitFor(() => {
        const s = snapshot();
        if (s.context.session?.id === id && s.status === 'active') return undefined;
        return s.context.lastEnd?.sessionId === id ? s.context.lastEnd : null;
      });
    },
    reload() {
      if (snapshot().matches('failed')) actor.send({ type: 'runtime.reload' });
      return runtime.ready();
    },
    async shutdown() {
      if (snapshot().status === 'active') actor.send({ type: 'runtime.shutdown' });
      await waitFor(() => (snapshot().status !== 'active' ? true : undefined));
      actor.stop();
      await recorder?.idle();
    },
  };
  return runtime;
}

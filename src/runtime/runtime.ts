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
import { errorValue, fail, FramehostError, type ErrorValue, type Result } from '../errors.ts';
import { acceptsInput, isSessionOwner, runtimeMachine, type RuntimeMachine } from '../machines/runtime.machine.ts';
import { createTrackShare, frameBytes, TrackWriter } from '../actors/input-track.ts';
import { wallClockMs, type FrameMessage } from '../actors/protocol.ts';
import { phaseOf, type Phase } from '../machines/phase.ts';
import { DEFAULT_LIMITS, type EndReason, type Limits, type ModelInfo, type RequestSubject, type RuntimeEvent, type SessionEnd, type SessionRecord } from '../machines/types.ts';
import { createInferenceActor, type InferenceSink, type WorkerMemory } from '../actors/inference.actor.ts';
import { eraseModel, type ErasedModel, type InputTrackSpec, type JsonValue } from '../model/api.ts';
import { loadModelModule, modelSource, modelUrl } from '../model/load.ts';
import { capabilitiesOf, checkCommand, type Capabilities } from '../model/capabilities.ts';
import type { ControlSnapshot } from '../model/controls.ts';
import type { CreateSessionOptions } from '../gpu/session.ts';
import { Emitter } from '../util/emitter.ts';
import { logDestination } from '../util/log-output.ts';
import { createRecorder, type JournalOptions, type JournalWritten, type Recorder } from '../journal/recorder.ts';
import { LiveSession } from './live-session.ts';
import { ChartReply, type Reply } from './chart-reply.ts';
import type { ReplayScript } from '../actors/loop-points.ts';

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
  /** Write a journal of every session into a folder (docs/journals.md). */
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
  return new ModelRuntime(options, log, url, eraseModel(await importModel(url)));
}

/**
 * The model's module, imported here to read its commands before the worker loads it. A module
 * that cannot be imported, or is not a model, rejects with `load_failed` (the cause kept): there
 * is no runtime yet to be `failed`.
 */
async function importModel(url: string): Promise<Parameters<typeof eraseModel>[0]> {
  try {
    return await loadModelModule(url);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new FramehostError('load_failed', why.includes(url) ? why : `${url}: ${why}`, { cause: err });
  }
}

/** One loaded model's chart and inference actor; requests become chart events and return its answer. */
class ModelRuntime implements Runtime {
  readonly actor: Actor<RuntimeMachine>;
  readonly capabilities: Capabilities;
  private readonly events: Emitter<RuntimeEvents>;
  private readonly recorder: Recorder | undefined;
  /** Input tracks: model-scoped shared memory, emptied for every session (src/actors/input-track.ts). */
  private readonly tracks: Map<string, TrackWriter>;
  private readonly replies = new ChartReply();
  /** The running session; null between sessions (a new object per session: its counters start at zero). */
  private live: LiveSession | null = null;
  /** The phase last told to listeners. */
  private current: Phase = 'loading';

  constructor(
    options: RuntimeOptions,
    readonly log: Logger,
    url: string,
    private readonly model: ErasedModel,
  ) {
    this.capabilities = capabilitiesOf(model);
    this.events = new Emitter<RuntimeEvents>((err, event) => log.error({ err, event }, 'runtime listener threw'));
    this.recorder = options.record
      ? createRecorder(options.record, { name: model.name, version: model.version, source: modelSource(options.model), options: options.modelOptions ?? {}, inputs: model.inputs ?? {} }, log)
      : undefined;
    this.tracks = new Map(Object.entries(model.inputs ?? {}).map(([name, spec]) => [name, new TrackWriter(createTrackShare(name, spec))]));
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
      inputs: [...this.tracks.values()].map((t) => t.share),
      ...(options.replay ? { replay: options.replay } : {}),
      sink: this.sink(),
    });
    this.actor = createActor(runtimeMachine.provide({ actors: { inference } }), {
      input: { limits: options.limits },
      ...(options.inspect ? { inspect: options.inspect } : {}),
    });
    this.listen();
    this.actor.start();
  }

  /** The running session when `sessionId` is it; a straggler from an ended session finds none. */
  private sessionOf(sessionId: string): LiveSession | null {
    return this.live?.id === sessionId ? this.live : null;
  }

  /** Where the inference actor delivers a session's output: counted, journalled, told to listeners. */
  private sink(): InferenceSink {
    const { events } = this;
    return {
      frame: (m: FrameMessage) => {
        const live = this.sessionOf(m.sessionId);
        if (!live) return;
        live.addFrames(m.count);
        if (live.log.isLevelEnabled('debug')) live.log.debug({ seq: m.seq, bytes: m.data.byteLength }, 'frame');
        const { type: _type, data, points: _points, ...meta } = m;
        const frame = { ...meta, data: new Uint8Array(data) };
        live.journal?.frame(frame);
        events.emit('frame', frame);
      },
      message: (sessionId, data) => {
        const live = this.sessionOf(sessionId);
        if (!live) return;
        live.journal?.message(data, live.frames);
        events.emit('message', { sessionId, data });
      },
      commandFailed: (sessionId, requestId, error) => {
        const live = this.sessionOf(sessionId);
        if (!live) return;
        live.journal?.commandFailed(requestId, error);
        events.emit('command.failed', { sessionId, requestId, error });
      },
      sessionStats: (sessionId, stats) => {
        const live = this.sessionOf(sessionId);
        if (!live) return;
        live.addDropped(stats.dropped);
        live.journal?.checks(stats.checks, stats.stopCheck);
      },
      points: (sessionId, points) => this.sessionOf(sessionId)?.journal?.points(points),
      workerMemory: (memory) => events.emit('worker.memory', memory),
    };
  }

  private clearInputs(): void {
    this.tracks.forEach((t) => t.clear());
  }

  /** The chart's emitted events and phases, turned into replies, sessions and listener events. */
  private listen(): void {
    const { actor, events, log } = this;
    actor.on('request.accepted', (e) => this.replies.answer(e.requestId, { ok: true, ...(e.sessionId ? { sessionId: e.sessionId } : {}) }));
    actor.on('request.refused', (e) => this.replies.answer(e.requestId, { ok: false, error: e.error }));
    actor.on('session.began', ({ session }) => {
      this.clearInputs();
      this.live = new LiveSession(session.id, log.child({ sessionId: session.id }), this.recorder?.open(session.id));
      this.live.log.info({ owner: session.owner, ...(session.sub ? { sub: session.sub } : {}) }, 'session began');
      events.emit('session.began', session);
    });
    actor.on('session.finished', ({ end }) => {
      this.clearInputs();
      const live = this.sessionOf(end.sessionId);
      const summary = { ...end, frames: live?.frames ?? 0, dropped: live?.dropped ?? 0 };
      (live?.log ?? log).info({ reason: end.reason, error: end.error, frames: summary.frames, dropped: summary.dropped }, 'session ended');
      live?.journal?.finish(summary).then(
        (written) => events.emit('journal.written', written),
        (err: unknown) => log.warn({ err }, 'journal: finishing the file failed'),
      );
      events.emit('session.finished', summary);
    });
    actor.subscribe({
      next: (snapshot) => this.phaseChanged(phaseOf(snapshot)),
      // An actor error with no observer is rethrown in a timer and kills Node.
      error: (err) => log.error({ err }, 'runtime chart error'),
    });
  }

  private phaseChanged(next: Phase): void {
    if (next === this.current) return;
    const previous = this.current;
    this.current = next;
    if (next === 'idle' || next === 'failed' || next === 'shutdown') this.live = null;
    this.log.info({ state: next, from: previous }, `state ${next}`);
    this.events.emit('phase', { phase: next, previous });
  }

  private request(event: RuntimeEvent & { requestId: string }): Reply {
    if (this.actor.getSnapshot().status !== 'active') return { ok: false, error: errorValue('shutting_down') };
    return this.replies.ask(event.requestId, event.type, () => this.actor.send(event));
  }

  private snapshot(): SnapshotFrom<RuntimeMachine> {
    return this.actor.getSnapshot();
  }

  /**
   * Resolves once `check` answers. With an error observer of its own: xstate rethrows a chart's
   * error (and kills Node) when any subscriber lacks one, and a waiter must not hang on a dead chart.
   */
  private waitFor<T>(check: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const now = check();
      if (now !== undefined) return resolve(now);
      const sub = this.actor.subscribe({
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

  async ready(): Promise<ModelInfo> {
    const outcome = await this.waitFor((): { model: ModelInfo } | { error: ErrorValue } | undefined => {
      const s = this.snapshot();
      if (s.context.model && phaseOf(s) !== 'loading') return { model: s.context.model };
      // Shut down before the model loaded: nothing failed, and the caller is told so.
      const notLoaded = errorValue('shutting_down', 'the runtime shut down before the model loaded');
      if (s.matches('failed') || s.status === 'done') return { error: s.context.loadError ?? (s.context.shutdownRequested ? notLoaded : errorValue('load_failed')) };
      if (s.context.shutdownRequested) return { error: notLoaded };
      return undefined;
    });
    if ('error' in outcome) throw FramehostError.from(outcome.error);
    return outcome.model;
  }

  start(opts: { owner?: string; subject?: RequestSubject } = {}): Result<{ sessionId: string }> {
    const r = this.request({ type: 'session.start', requestId: randomUUID(), owner: opts.owner ?? LOCAL_OWNER, sessionId: randomUUID(), ...(opts.subject ? { subject: opts.subject } : {}) });
    return r.ok ? { ok: true, sessionId: r.sessionId! } : r;
  }

  resume(opts: { sub: string }): Result<{ sessionId: string }> {
    const r = this.request({ type: 'session.resume', requestId: randomUUID(), sub: opts.sub });
    return r.ok ? { ok: true, sessionId: r.sessionId! } : r;
  }

  stop(opts: { owner?: string; reason?: EndReason } = {}): Result {
    const r = this.request({ type: 'session.stop', requestId: randomUUID(), ...(opts.owner ? { owner: opts.owner } : {}), reason: opts.reason ?? 'stopped' });
    return r.ok ? { ok: true } : r;
  }

  command(name: unknown, args: unknown, opts: { owner?: string } = {}): Result<{ requestId: string }> {
    const requestId = randomUUID();
    const command = checkCommand(this.model, name, args);
    const r = this.request({ type: 'session.command', requestId, owner: opts.owner ?? LOCAL_OWNER, command });
    const live = this.live;
    if (r.ok && command.ok && live) {
      live.journal?.command(requestId, command.name, command.args);
      // The session's command state moves; every client's controls follow (src/model/controls.ts).
      live.controls.accept(command.name, command.args, this.model.commands[command.name]!, live.log);
      this.events.emit('controls', { sessionId: live.id, controls: live.controls.snapshot() });
    }
    return r.ok ? { ok: true, requestId } : r;
  }

  publish(track: unknown, frame: InputFrameCandidate, opts: { owner?: string } = {}): Result {
    const writer = typeof track === 'string' ? this.tracks.get(track) : undefined;
    if (!writer) return fail('unknown_track', shown(track));
    const s = this.snapshot();
    if (!acceptsInput(s)) return fail('no_session');
    if (!isSessionOwner(s.context, opts.owner ?? LOCAL_OWNER)) return fail('not_owner');
    const problem = inputProblem(writer.share.spec, frame);
    if (problem) return fail('invalid_input', `${String(track)}: ${problem}`);
    const t = wallClockMs();
    const seq = writer.write(frame.data as Uint8Array, t);
    const live = this.live;
    if (live) {
      live.addInput();
      live.journal?.input(writer.share.name, seq, frame.data as Uint8Array, t, live.frames);
    }
    return { ok: true };
  }

  ownerPresence(sessionId: string, present: boolean): void {
    this.sessionOf(sessionId)?.ownerPresent(present);
    if (this.snapshot().status === 'active') this.actor.send({ type: present ? 'owner.returned' : 'owner.left', sessionId });
  }

  status(): RuntimeStatus {
    const s = this.snapshot();
    const c = this.live && s.context.session?.id === this.live.id ? this.live : null;
    return {
      phase: phaseOf(s),
      model: s.context.model,
      session: c ? { id: c.id, frames: c.frames, dropped: c.dropped, inputs: c.inputs, ownerAway: s.context.ownerAway, orphanStopsAt: s.context.ownerAway && c.awayAt !== null ? c.awayAt + s.context.limits.orphanTimeoutMs : null, controls: c.controls.snapshot() } : null,
      lastEnd: s.context.lastEnd,
      loadError: s.context.loadError,
      workerStarts: s.context.workerStarts,
      sessionsStarted: s.context.sessionsStarted,
    };
  }

  phase(): Phase {
    return phaseOf(this.snapshot());
  }

  on<K extends keyof RuntimeEvents>(event: K, fn: (payload: RuntimeEvents[K]) => void): () => void {
    return this.events.on(event, fn);
  }

  whenSessionOver(sessionId?: string): Promise<SessionEnd | null> {
    const id = sessionId ?? this.snapshot().context.session?.id;
    if (!id) return Promise.resolve(this.snapshot().context.lastEnd);
    return this.waitFor(() => {
      const s = this.snapshot();
      if (s.context.session?.id === id && s.status === 'active') return undefined;
      return s.context.lastEnd?.sessionId === id ? s.context.lastEnd : null;
    });
  }

  reload(): Promise<ModelInfo> {
    if (this.snapshot().matches('failed')) this.actor.send({ type: 'runtime.reload' });
    return this.ready();
  }

  async shutdown(): Promise<void> {
    if (this.snapshot().status === 'active') this.actor.send({ type: 'runtime.shutdown' });
    await this.waitFor(() => (this.snapshot().status !== 'active' ? true : undefined));
    this.actor.stop();
    await this.recorder?.idle();
  }
}

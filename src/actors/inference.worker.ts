/**
 * The inference worker: the only thread that touches ONNX Runtime and the model's code.
 *
 * `session.run` blocks its thread for the whole inference, so it runs here, off the main
 * thread, where it cannot stall acknowledgements, commands or frame delivery. The worker holds
 * the model scope (what `load()` returned) for its whole life and, per session, one
 * `SessionRun`: the session's state, its abort controller and its counters. A run is created
 * when a session starts and dropped when it ends, so no session can see another's state.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { pino, type Logger } from 'pino';
import { errorValue, FramehostError, type ErrorValue } from '../errors.ts';
import { eraseModel, type ErasedModel, type Frame, type JsonValue, type SessionContext } from '../model/api.ts';
import { createOnnxSession, type OnnxSession } from '../gpu/session.ts';
import { frameProblem } from '../gpu/frames.ts';
import { loadModelModule, resolveModelPath } from '../model/load.ts';
import type { EndReason } from '../machines/types.ts';
import { TrackReader } from './input-track.ts';
import { PointLog, ReplayPlayer } from './loop-points.ts';
import { InferenceTimer } from './inference-timer.ts';
import { FrameWindow } from './frame-window.ts';
import { NativeCalls } from './native-calls.ts';
import { CONTROL_STOP, wallClockMs, type FromWorker, type ToWorker, type WorkerInit } from './protocol.ts';

const init = workerData as WorkerInit;
const port = parentPort!;
const control = new Int32Array(init.control);

// Log lines travel to the main thread, which writes them through the one root logger.
const log: Logger = pino(
  { level: init.logLevel, base: { thread: 'inference' } },
  { write: (line: string) => post({ type: 'log', line }) },
);

function post(message: FromWorker, transfer?: ArrayBuffer[]): void {
  port.postMessage(message, transfer ?? []);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Loaded {
  readonly model: ErasedModel;
  readonly scope: unknown;
  readonly onnx: OnnxSession[];
}

interface SessionRun {
  readonly id: string;
  readonly abort: AbortController;
  readonly log: Logger;
  state: unknown;
  stopRequested: boolean;
  ended: boolean;
  frames: number;
  dropped: number;
  /** Commands that arrived since the loop's last shouldStop(): they are applied at the next one. */
  readonly queued: { requestId: string; name: string; args: Readonly<Record<string, unknown>> }[];
  readonly points: PointLog;
}

/** Inference time since the last emitted frame: every `run` of the model's sessions is timed. */
const inference = new InferenceTimer();
/** Frames posted to the main thread and not yet consumed there. */
const inFlight = new FrameWindow(control, init.maxFramesInFlight);
/** ONNX Runtime's calls under way: a close waits for them (src/actors/native-calls.ts). */
const native = new NativeCalls(control);

/** What the worker holds: the model once loaded, and the one session that may run on it at a time. */
class Holding {
  private model: Loaded | undefined;
  private run: SessionRun | undefined;
  /** Every ONNX session made for the model, from the first one on: a close during the load releases those made so far. */
  readonly sessions: OnnxSession[] = [];

  get loaded(): Loaded | undefined {
    return this.model;
  }

  /** The running session, if any. */
  get current(): SessionRun | undefined {
    return this.run;
  }

  load(model: Loaded): void {
    this.model = model;
  }

  /** Whether a session may start now: a model loaded and none running. */
  get free(): boolean {
    return this.model !== undefined && this.run === undefined;
  }

  begin(run: SessionRun): void {
    this.run = run;
  }

  /** Drop the session: the next one starts from nothing of it. */
  end(): void {
    this.run = undefined;
  }
}

const held = new Holding();

async function load(): Promise<void> {
  const started = performance.now();
  const onnx = held.sessions;
  try {
    const model = eraseModel(await loadModelModule(init.modelUrl));
    const scope = await model.load({
      createSession: async (source, options) => {
        const file = typeof source === 'string' ? resolveModelPath(source, init.modelUrl) : source;
        const s = await native.begin('createSession', () => createOnnxSession(file, { ...init.ort, ...options }, log));
        inference.time(s);
        native.guardRuns(s);
        onnx.push(s);
        return s;
      },
      resolve: (path) => resolveModelPath(path, init.modelUrl),
      modelUrl: init.modelUrl,
      provider: init.ort.provider ?? 'auto',
      options: init.modelOptions,
      log,
    });
    held.load({ model, scope, onnx });
    // Closed during the load: the model will serve nobody, and the close releases it.
    if (native.closing) return log.debug('model loaded after the close began; not announced');
    const provider = onnx[0]?.provider ?? 'none';
    const adapter = onnx[0]?.adapter ?? 'none';
    post({
      type: 'ready',
      model: { name: model.name, version: model.version, provider, adapter, loadMs: Math.round(performance.now() - started) },
      commands: Object.keys(model.commands),
    });
  } catch (err) {
    // A close during the load refuses its next ONNX Runtime call: the load ends, and did not fail.
    if (native.closing) return log.debug({ err: messageOf(err) }, 'model load ended by the close');
    // Most load failures are the model's own words (a bad option, a missing file): the message
    // says it; the stack, for the model's author, at debug.
    const error = errorValue('load_failed', messageOf(err));
    log.error({ error }, 'model load failed');
    log.debug({ err }, 'model load failed: the stack');
    post({ type: 'load.failed', error });
  }
}

/** Apply every message that is already waiting, without yielding to the event loop. */
function drain(): void {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) handle(m.message as ToWorker);
}

function requestStop(run: SessionRun): void {
  if (run.stopRequested) return;
  run.stopRequested = true;
  run.abort.abort(new FramehostError('no_session', 'the session is stopping'));
}

function emitFrame(run: SessionRun, frame: Frame): void {
  if (run.ended) return;
  const problem = frameProblem(frame);
  if (problem) throw new FramehostError('bad_frame', problem);
  const count = frame.count ?? 1;
  const seq = run.frames;
  run.frames += count;
  const spent = inference.take();
  // Replay writes every frame: it waits for the main thread instead of dropping (its timing
  // does not matter, every point is named by the loop's own counters).
  if (init.replay) {
    inFlight.waitForRoom();
  }
  // Newest wins from here on: a main thread that falls behind loses frames, not memory.
  if (inFlight.full()) {
    run.dropped += count;
    return;
  }
  const { buffer, byteOffset, byteLength } = frame.data;
  const movable = buffer instanceof ArrayBuffer && byteOffset === 0 && byteLength === buffer.byteLength;
  const data = movable ? buffer : frame.data.slice().buffer;
  inFlight.post();
  const points = run.points.take();
  post({ type: 'frame', sessionId: run.id, seq, width: frame.width, height: frame.height, format: frame.format, count, t: wallClockMs(), inferMs: spent, data, ...(points ? { points } : {}) }, [data]);
}

function sendMessage(run: SessionRun, data: JsonValue): void {
  if (!run.ended) post({ type: 'message', sessionId: run.id, data });
}

function sleep(run: SessionRun, ms: number): Promise<void> {
  if (run.stopRequested) return Promise.resolve();
  // Replay does not wait for the clock, but lets the event loop turn (heartbeats, stop).
  if (init.replay) return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      run.abort.signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    run.abort.signal.addEventListener('abort', done);
  });
}

async function runSession(sessionId: string): Promise<void> {
  const { model, scope } = held.loaded!;
  Atomics.store(control, CONTROL_STOP, 0);
  inference.take(); // warm-up or the last session's runs are not this session's first frame
  const run: SessionRun = {
    id: sessionId,
    abort: new AbortController(),
    log: log.child({ sessionId }),
    state: undefined,
    stopRequested: false,
    ended: false,
    frames: 0,
    dropped: 0,
    queued: [],
    points: new PointLog(),
  };
  held.begin(run);
  const replay = init.replay ? new ReplayPlayer(init.replay) : undefined;
  // Fresh readers per session; the main thread empties the slots before a session starts.
  const readers = new Map(init.inputs.map((share) => [share.name, new TrackReader(share)]));
  let end: SessionOutcome = { reason: 'returned' };
  try {
    run.state = model.createSessionState(scope);
    post({ type: 'session.started', sessionId });
    await model.loop(sessionContext(run, scope, readers, replay));
    if (run.stopRequested) end = { reason: 'stopped' };
  } catch (err) {
    end = failureOf(run, err);
  }
  run.ended = true;
  const { reason, error } = end;
  const points = run.points.take();
  post({ type: 'session.ended', sessionId, reason, ...(error ? { error } : {}), frames: run.frames, dropped: run.dropped, ...(points ? { points } : {}), checks: run.points.checks, ...(run.points.stopCheck !== undefined ? { stopCheck: run.points.stopCheck } : {}) });
  try {
    await model.onSessionEnd?.({ sessionId, model: scope, state: run.state, reason, log: run.log });
  } catch (err) {
    run.log.warn({ err }, 'onSessionEnd threw; the session state is dropped anyway');
  }
  // Drop every reference to the session's state: the next session gets a fresh one.
  run.state = undefined;
  held.end();
  post({ type: 'session.cleaned', sessionId });
}

interface SessionOutcome {
  readonly reason: EndReason;
  readonly error?: ErrorValue;
}

/** How a loop that threw ended: stopped (an abort-driven rejection), or an error with its code. */
function failureOf(run: SessionRun, err: unknown): SessionOutcome {
  if (run.stopRequested && run.abort.signal.aborted && !(err instanceof FramehostError && err.code === 'bad_frame')) {
    return { reason: 'stopped' }; // an abort-driven rejection is how a cooperative loop ends
  }
  run.log.warn({ err }, 'session loop failed');
  return { reason: 'error', error: err instanceof FramehostError ? err.toValue() : errorValue('loop_failed', messageOf(err)) };
}

/** What the model's loop sees of its session: stop checks (where commands apply), frames out, inputs in. */
function sessionContext(run: SessionRun, scope: unknown, readers: ReadonlyMap<string, TrackReader>, replay: ReplayPlayer | undefined): SessionContext<unknown, unknown> {
  return {
    sessionId: run.id,
    model: scope,
    state: run.state,
    signal: run.abort.signal,
    log: run.log,
    shouldStop: () => {
      drain();
      run.points.checks++;
      // Commands take effect here and only here while the loop runs: a defined point between
      // frames (never in the middle of an awaited inference), which the journal records.
      if (replay) for (const c of replay.commandsAt(run.points.checks)) runCommand(run, c.requestId, c.name, c.args);
      for (const c of run.queued.splice(0)) runCommand(run, c.requestId, c.name, c.args);
      if (replay?.stopsAt(run.points.checks, run.frames)) requestStop(run);
      if (Atomics.load(control, CONTROL_STOP) === 1) requestStop(run);
      if (run.stopRequested) run.points.stopCheck ??= run.points.checks;
      return run.stopRequested;
    },
    emit: (frame) => emitFrame(run, frame),
    send: (data) => sendMessage(run, data),
    sleep: (ms) => sleep(run, ms),
    get frameCount() {
      return run.frames;
    },
    input: (track) => {
      const reader = readers.get(track);
      if (!reader) throw new FramehostError('unknown_track', `${track}: declare it in the model's inputs`);
      const spec = reader.share.spec;
      if (replay) {
        return {
          latest: () => replay.read(track, false, spec),
          next: () => new Promise((resolve) => setImmediate(() => resolve(replay.read(track, true, spec)))),
        };
      }
      return {
        latest: () => run.points.read(track, reader.latest(), run.frames),
        next: async (timeoutMs = 1000) => run.points.read(track, await reader.next(timeoutMs, run.abort.signal), run.frames),
      };
    },
  };
}

function runCommand(run: SessionRun, requestId: string, name: string, args: Readonly<Record<string, unknown>>): void {
  const loaded = held.loaded;
  if (run.ended || !loaded) return; // stale: the session is over
  const sessionId = run.id;
  run.points.command(requestId, run.frames);
  const def = loaded.model.commands[name];
  const fail = (err: unknown): void => {
    run.log.warn({ err, command: name }, 'command handler threw');
    post({ type: 'command.failed', sessionId, requestId, error: errorValue('command_failed', `${name}: ${messageOf(err)}`) });
  };
  // Only a replayed journal names a command the model lacks (live ones are checked on the main
  // thread, and replay checks the journal first): a coded failure, no stack.
  if (!def) return void post({ type: 'command.failed', sessionId, requestId, error: errorValue('unknown_command', JSON.stringify(name)) });
  try {
    const result = def.handler(args as never, {
      sessionId,
      model: loaded.scope,
      state: run.state,
      send: (data) => sendMessage(run, data),
      log: run.log,
    });
    if (result instanceof Promise) result.catch(fail);
  } catch (err) {
    fail(err);
  }
}

/**
 * Release the model and answer `closed` (the main thread then ends the thread). Also during the
 * load, which the chart lets happen when a shutdown comes first: the native call under way (a
 * session being created) ends first, no other begins, and the sessions made so far are released.
 */
async function close(): Promise<void> {
  await native.close();
  const loaded = held.loaded;
  if (loaded) {
    try {
      await loaded.model.dispose?.(loaded.scope);
    } catch (err) {
      log.warn({ err }, 'model dispose threw');
    }
  }
  for (const s of held.sessions) await s.session.release();
  log.debug({ sessions: held.sessions.length, loaded: loaded !== undefined }, 'model released: its ONNX sessions are freed');
  clearInterval(heartbeat);
  post({ type: 'closed' });
  port.close();
}

/** The chart closes the worker once; the same promise for any repeat. */
let closing: Promise<void> | undefined;

function handle(message: ToWorker): void {
  const current = held.current;
  switch (message.type) {
    case 'session.start':
      if (!held.free) return; // the chart never asks this; ignore rather than corrupt
      void runSession(message.sessionId);
      return;
    case 'session.stop':
      if (current?.id === message.sessionId) requestStop(current);
      return;
    case 'session.command':
      // Queued for the loop's next shouldStop(); a stale one (its session is over) is dropped.
      if (current?.id === message.sessionId && !current.ended) current.queued.push({ requestId: message.requestId, name: message.name, args: message.args });
      return;
    case 'worker.close':
      closing ??= close();
      return;
  }
}

// The watchdog's evidence: a wedged native call or a loop that never yields stops this.
const heartbeat = setInterval(() => {
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  post({ type: 'heartbeat', rss, heapUsed, heapTotal, external, arrayBuffers });
}, init.heartbeatIntervalMs);

port.on('message', handle);
void load();

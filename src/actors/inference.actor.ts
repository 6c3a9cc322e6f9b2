/**
 * The inference actor: the chart's handle on the inference worker. A `fromCallback` actor, so
 * the worker lives exactly as long as the chart's `alive` state: leaving it (a kill, a crash,
 * the end of shutdown) runs the cleanup below, which terminates the thread.
 *
 * Lifecycle reports become chart events (`worker.*`). Frames, model messages and command
 * failures do not: they are per-frame traffic that the chart has no rule about, so they go
 * straight to the runtime's sink (and stay out of the inspector, at ~80 µs an event).
 */
import type { Logger } from 'pino';
import { fromCallback } from 'xstate';
import { errorValue, type ErrorValue } from '../errors.ts';
import type { InferenceInput, WorkerEvent } from '../machines/types.ts';
import type { JsonValue } from '../model/api.ts';
import type { CreateSessionOptions } from '../gpu/session.ts';
import { startWorker } from '../util/worker.ts';
import { watchNativeCalls } from './native-calls.ts';
import type { TrackShare } from './input-track.ts';
import type { LoopPoint, ReplayScript } from './loop-points.ts';
import { CONTROL_CLOSE, CONTROL_CONSUMED, CONTROL_SLOTS, CONTROL_STOP, type FrameMessage, type FromWorker, type WorkerInit } from './protocol.ts';

export interface InferenceSink {
  frame(frame: FrameMessage): void;
  message(sessionId: string, data: JsonValue): void;
  commandFailed(sessionId: string, requestId: string, error: ErrorValue): void;
  sessionStats(sessionId: string, stats: { frames: number; dropped: number; checks: number; stopCheck?: number }): void;
  /** Where commands took effect and input frames were read (before the frame they came with). */
  points(sessionId: string, points: readonly LoopPoint[]): void;
  /** The worker's memory, with every heartbeat. */
  workerMemory(memory: WorkerMemory): void;
}

/** Bytes: the process's RSS, and the worker thread's own heap, external and ArrayBuffer memory. */
export interface WorkerMemory {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

export interface InferenceActorOptions {
  readonly modelUrl: string;
  readonly modelOptions: Readonly<Record<string, unknown>>;
  readonly ort: CreateSessionOptions;
  readonly log: Logger;
  readonly sink: InferenceSink;
  readonly maxFramesInFlight?: number;
  readonly heartbeatIntervalMs: number;
  /** The model's input tracks (shared memory the runtime writes into). */
  readonly inputs: readonly TrackShare[];
  /** Log a warning when the process's resident memory passes this (MiB); 0: never. */
  readonly memoryWarnMb?: number;
  /** Hard cap on the worker's JavaScript heap (MiB): past it the worker dies and the session ends `crashed`. */
  readonly workerHeapMb?: number;
  /** Replay mode: the worker plays this script (src/actors/loop-points.ts). */
  readonly replay?: ReplayScript;
}

const WORKER_ENTRY = new URL(`./inference.worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** Re-log a worker's JSON log line through the root logger, at its own level. */
function relog(log: Logger, line: string): void {
  try {
    const { level, msg, time: _time, pid: _pid, hostname: _host, ...fields } = JSON.parse(line) as Record<string, unknown>;
    const label = typeof level === 'number' ? log.levels.labels[level] : undefined;
    const fn = (label && label in log ? log[label as 'info'] : log.info).bind(log);
    fn(fields, typeof msg === 'string' ? msg : '');
  } catch {
    log.info({ line }, 'worker log line');
  }
}

export function createInferenceActor(options: InferenceActorOptions) {
  return fromCallback<InferenceInput>(({ sendBack, receive }) => {
    const link = new WorkerLink(options, sendBack);
    receive((event) => link.deliver(event));
    return () => link.close();
  });
}

/** One inference worker as the chart sees it: started, watched, told, and ended with the actor. */
class WorkerLink {
  private readonly worker: ReturnType<typeof startWorker>;
  private readonly flags: Int32Array;
  private memoryWarned = false;
  /** Set once the worker is gone or the actor stopped: nothing more goes back to the chart. */
  private finished = false;
  /** When the worker last showed life (a heartbeat, or ready): what the watchdog's probe reads. */
  private lastBeat = Date.now();

  constructor(
    private readonly options: InferenceActorOptions,
    private readonly sendBack: (event: WorkerEvent) => void,
  ) {
    const control = new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT);
    this.flags = new Int32Array(control);
    const init: WorkerInit = {
      modelUrl: options.modelUrl,
      modelOptions: options.modelOptions,
      ort: options.ort,
      logLevel: options.log.level,
      control,
      maxFramesInFlight: options.maxFramesInFlight ?? 4,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      inputs: options.inputs,
      ...(options.replay ? { replay: options.replay } : {}),
    };
    this.worker = startWorker(WORKER_ENTRY, {
      workerData: init,
      ...(options.workerHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: options.workerHeapMb } } : {}),
    });
    this.worker.on('message', (m: FromWorker) => this.onMessage(m));
    this.worker.on('error', (err) => {
      options.log.error({ err }, 'inference worker error');
      this.died(errorValue('worker_crashed', err.message));
    });
    const unwatch = watchNativeCalls(this.flags);
    this.worker.on('exit', (code) => {
      unwatch(); // a thread ended inside a call leaves its count behind
      this.died(errorValue('worker_crashed', `the worker exited with code ${code}`));
    });
  }

  /** An event from the chart for the worker. */
  deliver(event: InferenceInput): void {
    // The watchdog's question is the actor's to answer, from the main thread: a wedged worker cannot.
    if (event.type === 'worker.probe') return this.report({ type: 'worker.liveness', silentMs: Date.now() - this.lastBeat });
    // The flag first: a loop deep in synchronous work sees it at its next shouldStop().
    if (event.type === 'session.stop') Atomics.store(this.flags, CONTROL_STOP, 1);
    // Likewise a load's next ONNX Runtime call is refused at once (src/actors/native-calls.ts).
    if (event.type === 'worker.close') Atomics.store(this.flags, CONTROL_CLOSE, 1);
    this.worker.postMessage(event);
  }

  /** The actor stopped (the chart left `alive`): end the thread. */
  close(): void {
    this.finished = true;
    void this.worker.terminate();
  }

  private report(event: WorkerEvent): void {
    if (!this.finished) this.sendBack(event);
  }

  private died(error: ErrorValue): void {
    if (this.finished) return;
    this.report({ type: 'worker.exited', error });
    this.finished = true;
  }

  /** Per-frame traffic goes to the sink; lifecycle reports become chart events. */
  private onMessage(m: FromWorker): void {
    const { sink, log } = this.options;
    switch (m.type) {
      case 'frame':
        Atomics.add(this.flags, CONTROL_CONSUMED, 1);
        if (this.options.replay) Atomics.notify(this.flags, CONTROL_CONSUMED); // a replaying worker waits for this
        if (m.points) sink.points(m.sessionId, m.points);
        sink.frame(m);
        return;
      case 'message':
        sink.message(m.sessionId, m.data);
        return;
      case 'command.failed':
        sink.commandFailed(m.sessionId, m.requestId, m.error);
        return;
      case 'log':
        relog(log, m.line);
        return;
      case 'heartbeat':
        // Not a chart event: the chart asks (worker.probe) when its watchdog delay runs out.
        this.lastBeat = Date.now();
        sink.workerMemory({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers });
        this.watchMemory(m.rss, m.heapUsed);
        return;
      default:
        this.onLifecycle(m);
    }
  }

  private onLifecycle(m: Exclude<FromWorker, { type: 'frame' | 'message' | 'command.failed' | 'log' | 'heartbeat' }>): void {
    switch (m.type) {
      case 'ready':
        this.lastBeat = Date.now();
        this.report({ type: 'worker.ready', model: m.model });
        return;
      case 'load.failed':
        this.report({ type: 'worker.failed', error: m.error });
        return;
      case 'session.started':
        this.report({ type: 'worker.session.started', sessionId: m.sessionId });
        return;
      case 'session.ended':
        if (m.points) this.options.sink.points(m.sessionId, m.points);
        this.options.sink.sessionStats(m.sessionId, { frames: m.frames, dropped: m.dropped, checks: m.checks, ...(m.stopCheck !== undefined ? { stopCheck: m.stopCheck } : {}) });
        this.report({ type: 'worker.session.ended', sessionId: m.sessionId, reason: m.reason, ...(m.error ? { error: m.error } : {}) });
        return;
      case 'session.cleaned':
        this.report({ type: 'worker.session.cleaned', sessionId: m.sessionId });
        return;
      case 'closed':
        this.report({ type: 'worker.closed' });
        return;
    }
  }

  /** Log once when resident memory crosses the warning level, and once when it falls back. */
  private watchMemory(rss: number, heapUsed: number): void {
    const { log, memoryWarnMb } = this.options;
    const warnAt = (memoryWarnMb ?? 0) * 1024 * 1024;
    if (warnAt > 0 && rss > warnAt !== this.memoryWarned) {
      this.memoryWarned = !this.memoryWarned;
      if (this.memoryWarned) log.warn({ rssMb: Math.round(rss / 2 ** 20), heapUsedMb: Math.round(heapUsed / 2 ** 20), warnMb: memoryWarnMb }, 'memory above the warning level');
      else log.info({ rssMb: Math.round(rss / 2 ** 20) }, 'memory back below the warning level');
    }
  }
}

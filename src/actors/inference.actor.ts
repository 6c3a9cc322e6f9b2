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
import type { TrackShare } from './input-track.ts';
import type { LoopPoint, ReplayScript } from './loop-points.ts';
import { CONTROL_CONSUMED, CONTROL_SLOTS, CONTROL_STOP, type FrameMessage, type FromWorker, type WorkerInit } from './protocol.ts';

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
  const { log, sink } = options;
  return fromCallback<InferenceInput>(({ sendBack, receive }) => {
    const control = new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT);
    const flags = new Int32Array(control);
    const init: WorkerInit = {
      modelUrl: options.modelUrl,
      modelOptions: options.modelOptions,
      ort: options.ort,
      logLevel: log.level,
      control,
      maxFramesInFlight: options.maxFramesInFlight ?? 4,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      inputs: options.inputs,
      ...(options.replay ? { replay: options.replay } : {}),
    };
    const worker = startWorker(WORKER_ENTRY, {
      workerData: init,
      ...(options.workerHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: options.workerHeapMb } } : {}),
    });
    let memoryWarned = false;
    let finished = false;
    /** When the worker last showed life (a heartbeat, or ready): what the watchdog's probe reads. */
    let lastBeat = Date.now();
    const report = (event: WorkerEvent): void => {
      if (!finished) sendBack(event);
    };
    const died = (error: ErrorValue): void => {
      if (finished) return;
      report({ type: 'worker.exited', error });
      finished = true;
    };

    worker.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'frame':
          Atomics.add(flags, CONTROL_CONSUMED, 1);
          if (options.replay) Atomics.notify(flags, CONTROL_CONSUMED); // a replaying worker waits for this
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
        case 'heartbeat': {
          // Not a chart event: the chart asks (worker.probe) when its watchdog delay runs out.
          lastBeat = Date.now();
          sink.workerMemory({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers });
          const warnAt = (options.memoryWarnMb ?? 0) * 1024 * 1024;
          if (warnAt > 0 && m.rss > warnAt !== memoryWarned) {
            memoryWarned = !memoryWarned;
            if (memoryWarned) log.warn({ rssMb: Math.round(m.rss / 2 ** 20), heapUsedMb: Math.round(m.heapUsed / 2 ** 20), warnMb: options.memoryWarnMb }, 'memory above the warning level');
            else log.info({ rssMb: Math.round(m.rss / 2 ** 20) }, 'memory back below the warning level');
          }
          return;
        }
        case 'ready':
          lastBeat = Date.now();
          report({ type: 'worker.ready', model: m.model });
          return;
        case 'load.failed':
          report({ type: 'worker.failed', error: m.error });
          return;
        case 'session.started':
          report({ type: 'worker.session.started', sessionId: m.sessionId });
          return;
        case 'session.ended':
          if (m.points) sink.points(m.sessionId, m.points);
          sink.sessionStats(m.sessionId, { frames: m.frames, dropped: m.dropped, checks: m.checks, ...(m.stopCheck !== undefined ? { stopCheck: m.stopCheck } : {}) });
          report({ type: 'worker.session.ended', sessionId: m.sessionId, reason: m.reason, ...(m.error ? { error: m.error } : {}) });
          return;
        case 'session.cleaned':
          report({ type: 'worker.session.cleaned', sessionId: m.sessionId });
          return;
        case 'closed':
          report({ type: 'worker.closed' });
          return;
      }
    });
    worker.on('error', (err) => {
      log.error({ err }, 'inference worker error');
      died(errorValue('worker_crashed', err.message));
    });
    worker.on('exit', (code) => died(errorValue('worker_crashed', `the worker exited with code ${code}`)));

    receive((event) => {
      // The watchdog's question is the actor's to answer, from the main thread: a wedged worker cannot.
      if (event.type === 'worker.probe') return report({ type: 'worker.liveness', silentMs: Date.now() - lastBeat });
      // The flag first: a loop deep in synchronous work sees it at its next shouldStop().
      if (event.type === 'session.stop') Atomics.store(flags, CONTROL_STOP, 1);
      worker.postMessage(event);
    });

    return () => {
      finished = true;
      void worker.terminate();
    };
  });
}

/**
 * The inference worker's protocol: one discriminated union each way (STYLE.md, rule 6).
 * Frames cross as transferred ArrayBuffers, never copies. Integers in shared memory let the
 * threads talk without waiting on each other's event loop: the stop flag (read by the loop's
 * `shouldStop()` even in the middle of a long synchronous stretch), the count of frames the
 * main thread has taken (the worker drops frames, counted, rather than let an unbounded queue
 * build up behind a busy main thread), the close flag and the count of ONNX Runtime calls under
 * way (src/actors/native-calls.ts).
 */
import type { ErrorValue } from '../errors.ts';
import type { EndReason, InferenceInput, ModelInfo } from '../machines/types.ts';
import type { CreateSessionOptions } from '../gpu/session.ts';
import type { JsonValue, PixelFormat } from '../model/api.ts';
import type { TrackShare } from './input-track.ts';
import type { LoopPoint, ReplayScript } from './loop-points.ts';

export const CONTROL_STOP = 0;
export const CONTROL_CONSUMED = 1;
/** Set by the main thread with the close: a worker inside a load sees it between two native calls, before the message. */
export const CONTROL_CLOSE = 2;
/** ONNX Runtime calls the worker has under way (the main thread reads it at a second signal). */
export const CONTROL_NATIVE = 3;
export const CONTROL_SLOTS = 4;

export interface WorkerInit {
  /** file: URL of the model module (default-exports a model definition). */
  readonly modelUrl: string;
  readonly modelOptions: Readonly<Record<string, unknown>>;
  /** No probe: tensors do not cross to the worker (a model passes its own to createSession). */
  readonly ort: Omit<CreateSessionOptions, 'probe'>;
  readonly logLevel: string;
  /** Int32Array over CONTROL_SLOTS slots. */
  readonly control: SharedArrayBuffer;
  /** Frames posted but not yet taken by the main thread before the worker starts dropping. */
  readonly maxFramesInFlight: number;
  /** How often the worker reports that its event loop still turns. */
  readonly heartbeatIntervalMs: number;
  /** The model's input tracks, in shared memory (written by the main thread). */
  readonly inputs: readonly TrackShare[];
  /** Replay mode (framehost replay): commands and input reads come from this script, not the main thread. */
  readonly replay?: ReplayScript;
}

export type ToWorker = InferenceInput;

export interface FrameMessage {
  readonly type: 'frame';
  readonly sessionId: string;
  /** 0-based index of this frame (of the block's first frame) in its session. */
  readonly seq: number;
  readonly width: number;
  readonly height: number;
  readonly format: PixelFormat;
  readonly count: number;
  /** Wall-clock time of the emit, in ms since the epoch (sub-millisecond precision). */
  readonly t: number;
  /** Time spent in ONNX Runtime `run` calls since the previous frame, ms. */
  readonly inferMs: number;
  readonly data: ArrayBuffer;
  /** Commands applied and input frames read since the previous posted frame (for the journal). */
  readonly points?: readonly LoopPoint[];
}

export type FromWorker =
  | { readonly type: 'ready'; readonly model: ModelInfo; readonly commands: readonly string[] }
  | { readonly type: 'load.failed'; readonly error: ErrorValue }
  /** The worker's event loop turned; with the process's resident memory, for the memory warning. */
  /** The process's RSS; the worker's own heap, and its external and ArrayBuffer memory (bytes). */
  | { readonly type: 'heartbeat'; readonly rss: number; readonly heapUsed: number; readonly heapTotal: number; readonly external: number; readonly arrayBuffers: number }
  | { readonly type: 'session.started'; readonly sessionId: string }
  | FrameMessage
  | { readonly type: 'message'; readonly sessionId: string; readonly data: JsonValue }
  | { readonly type: 'command.failed'; readonly sessionId: string; readonly requestId: string; readonly error: ErrorValue }
  | {
      readonly type: 'session.ended';
      readonly sessionId: string;
      readonly reason: EndReason;
      readonly error?: ErrorValue;
      readonly frames: number;
      readonly dropped: number;
      /** The points not yet reported with a frame, and the loop's shouldStop() calls in all. */
      readonly points?: readonly LoopPoint[];
      readonly checks: number;
      /** The shouldStop() call that first returned true, if one did (a loop may end on the abort signal). */
      readonly stopCheck?: number;
    }
  | { readonly type: 'session.cleaned'; readonly sessionId: string }
  | { readonly type: 'closed' }
  | { readonly type: 'log'; readonly line: string };

/** The time base shared by both threads (performance.now() alone is per thread). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * The model API: what a model author writes. One module, default-exporting `defineModel({...})`.
 *
 * Two scopes, kept apart by construction:
 * - model scope: what `load()` returns (ONNX session, weights, buffers, config). Created once per
 *   process, reused by every session.
 * - session scope: what `createSessionState()` returns (latents, conditioning, counters). Created
 *   fresh for every session and dropped at its end; the runtime never hands one session's state
 *   to another, whatever `onSessionEnd` does or forgets to do.
 *
 * The module is imported on two threads: the main thread reads only its declarations (name,
 * commands' schemas) to validate commands before they cross to the worker; `load`, the loop and
 * the handlers run only inside the inference worker.
 */
import type { Logger } from 'pino';
import type { InferenceSession } from 'onnxruntime-node';
import type { ArgsOf, Fields } from './schema.ts';
import type { EndReason } from '../machines/types.ts';
import type { CreateSessionOptions, OnnxSession } from '../gpu/session.ts';
import type { ControlPatch } from './controls.ts';
import type { JsonValue } from './json.ts';
import type { ProviderChoice } from '../gpu/providers.ts';

export type PixelFormat = 'rgba' | 'rgb';

/**
 * One frame, or a block of `count` frames stored back to back in `data`.
 * `emit` takes ownership of `data`'s buffer: it is moved to the main thread, not copied, and
 * is detached (length 0) afterwards. Allocate a new array per frame (or emit a copy).
 */
export interface Frame {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly format: PixelFormat;
  /** Frames in this block (default 1). */
  readonly count?: number;
}

/** A declared input track: frames of exactly this size and layout, from the session owner. */
export interface InputTrackSpec {
  readonly width: number;
  readonly height: number;
  readonly format: PixelFormat;
  readonly description?: string;
}

/** One frame read from an input track (a copy: the model may keep or modify it). */
export interface InputFrame {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly format: PixelFormat;
  /** 1, 2, 3… per frame written in this session (gaps: frames replaced before being read). */
  readonly seq: number;
  /** When the main thread received it, ms since the epoch. */
  readonly t: number;
}

export interface InputReader {
  /** The newest frame, or null if none arrived in this session yet. Never waits. */
  latest(): InputFrame | null;
  /** Wait for a frame newer than the last one returned; null after `timeoutMs` or at stop. */
  next(timeoutMs?: number): Promise<InputFrame | null>;
}

// Declared in json.ts, which controls.ts reads too, so that it need not import this file.
export type { JsonValue } from './json.ts';

export interface LoadContext {
  /**
   * Create an ONNX Runtime session with framehost's provider selection and thread settings.
   * A relative path is resolved against the model module's own location (see `resolve`).
   */
  createSession(source: string | Uint8Array, options?: CreateSessionOptions): Promise<OnnxSession>;
  /**
   * A path relative to the model module's folder (not the server's working directory), made
   * absolute: `resolve('./weights.bin')`. Absolute paths and file: URLs come back as paths.
   */
  resolve(path: string): string;
  /** The model module's URL (`import.meta.url` of the model file). */
  readonly modelUrl: string;
  /**
   * The execution provider asked for (`--provider`, `createRuntime({ ort })`): what
   * `createSession` plans with unless its options say otherwise. The provider a session got is
   * `OnnxSession.provider` (auto and fallbacks decide it there).
   */
  readonly provider: ProviderChoice;
  /** Model options from the command line or `createRuntime({ modelOptions })`. */
  readonly options: Readonly<Record<string, unknown>>;
  readonly log: Logger;
}

export interface SessionContext<M, S> {
  readonly sessionId: string;
  readonly model: M;
  readonly state: S;
  /** Aborted when the session is asked to stop. Pass it to anything that waits. */
  readonly signal: AbortSignal;
  /** True once stop was requested. Also applies commands that arrived since the last call. */
  shouldStop(): boolean;
  /** Send frames to the viewer (ownership of the buffer moves; see `Frame`). */
  emit(frame: Frame): void;
  /** Send a JSON message to the session's client. */
  send(message: JsonValue): void;
  /** Wait, but wake at once when stop is requested (never rejects). For pacing a loop. */
  sleep(ms: number): Promise<void>;
  /** Frames emitted so far in this session. */
  readonly frameCount: number;
  /** An input track declared in `inputs` (empty at the start of every session). */
  input(track: string): InputReader;
  readonly log: Logger;
}

export interface CommandContext<M, S> {
  readonly sessionId: string;
  readonly model: M;
  readonly state: S;
  send(message: JsonValue): void;
  readonly log: Logger;
}

export interface CommandDef<F extends Fields, M, S> {
  readonly description?: string;
  readonly args: F;
  /** Runs inside the worker, between frames (never during an inference). */
  handler(args: ArgsOf<F>, ctx: CommandContext<M, S>): void | Promise<void>;
  /**
   * Optional, pure, on the main thread: what this command does to the other commands' values,
   * for the clients' controls (docs/writing-a-model.md, "The session's command state"). A preset returns the
   * rates it sets (`{ rates: { feed, kill } }`); a command that makes another's value untrue
   * returns it as null (`{ preset: null }` from the rates). The command's own arguments are
   * recorded without it.
   */
  shows?(args: ArgsOf<F>): ControlPatch;
}

export interface SessionEndContext<M, S> {
  readonly sessionId: string;
  readonly model: M;
  readonly state: S;
  readonly reason: EndReason;
  readonly log: Logger;
}

/**
 * M is inferred from `load`'s result and S from `createSessionState`'s, nowhere else (`NoInfer`):
 * a command, loop or hook that disagrees with them is an error on its own line, rather than a
 * model whose types silently widen to `unknown`.
 */
export interface ModelDefinition<M = unknown, S = unknown, C extends Record<string, Fields> = Record<string, Fields>> {
  readonly name: string;
  readonly version: string;
  readonly description?: string;
  /**
   * False when the same commands do not give the same frames (sampling noise, wall-clock input):
   * `framehost check` then compares frame shapes and formats across sessions, not their bytes.
   */
  readonly deterministic?: boolean;
  /** Runs once per process (and again only if a stuck loop forced a fresh worker). */
  load(ctx: LoadContext): Promise<M>;
  /** Fresh session-scoped state; called at the start of every session. */
  createSessionState(model: M): S;
  readonly commands: { readonly [K in keyof C]: CommandDef<C[K], NoInfer<M>, NoInfer<S>> };
  /** Input tracks the owner's client may publish frames on (video-to-video models). */
  readonly inputs?: Readonly<Record<string, InputTrackSpec>>;
  /** The generation loop. Return to end the session; throw to end it with an error. */
  loop(ctx: SessionContext<NoInfer<M>, NoInfer<S>>): Promise<void>;
  /** Optional: reset or release what the author wants. The runtime's isolation does not rely on it. */
  onSessionEnd?(ctx: SessionEndContext<NoInfer<M>, NoInfer<S>>): void | Promise<void>;
  /** Optional: release model-scoped resources at shutdown (ONNX sessions are released by framehost). */
  dispose?(model: NoInfer<M>): void | Promise<void>;
}

/** Identity function that gives the model author full type inference. */
export function defineModel<M, S, C extends Record<string, Fields>>(def: ModelDefinition<M, S, C>): ModelDefinition<M, S, C> {
  return def;
}

/**
 * The erased form the runtime handles: it only passes `load()`'s result back to the same
 * model's loop and handlers, so forgetting M and S at this one boundary is safe.
 */
export type ErasedModel = ModelDefinition<unknown, unknown, Record<string, Fields>>;

export function eraseModel<M, S, C extends Record<string, Fields>>(def: ModelDefinition<M, S, C>): ErasedModel {
  return def as unknown as ErasedModel;
}

export type { InferenceSession };

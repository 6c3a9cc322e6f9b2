/**
 * The vocabulary of the runtime chart: its context, the events it accepts, the events it emits,
 * and the messages it sends to the inference actor. Pure types: nothing here imports socket.io
 * or onnxruntime (STYLE.md, rule 1).
 */
import type { ErrorValue } from '../errors.ts';

/** Why a session ended. A closed list: clients switch on it. */
export type EndReason =
  | 'stopped' // the owner or the API asked
  | 'returned' // the model's loop returned by itself
  | 'error' // the model's loop threw
  | 'killed' // the loop ignored stop past the deadline; its worker was terminated
  | 'crashed' // the inference worker died under the session
  | 'orphaned' // nobody controlled the session for the orphan timeout (transport)
  | 'shutdown' // the runtime is shutting down
  | 'fenced'; // a fleet node could not prove it still holds the user's lease (src/fleet/node.ts)

export const END_REASONS: readonly EndReason[] = ['stopped', 'returned', 'error', 'killed', 'crashed', 'orphaned', 'shutdown', 'fenced'];

/** What the loaded model reports about itself once, at `worker.ready`. */
export interface ModelInfo {
  readonly name: string;
  readonly version: string;
  /** The execution provider of the model's first ONNX session (cpu, webgpu, cuda, tensorrt), or none. */
  readonly provider: string;
  /** What runs it, as the system names it (the CPU's or GPU's model name). */
  readonly adapter: string;
  readonly loadMs: number;
}

export interface SessionRecord {
  readonly id: string;
  readonly owner: string;
  /** The user the session belongs to (an access token's `sub`); absent where tokens are off. */
  readonly sub?: string;
}

/**
 * Who asks for a session, where access tokens are on: the token's `sub`, and when the server
 * stops accepting the token (its `exp` plus the clock-skew allowance) against when it was presented.
 */
export interface RequestSubject {
  readonly sub: string;
  readonly expiresAt: number;
  readonly presentedAt: number;
}

export interface SessionEnd {
  readonly sessionId: string;
  readonly reason: EndReason;
  readonly error?: ErrorValue;
}

/** Timeouts, in milliseconds. Named delays of the chart read them (STYLE.md, rule 7). */
export interface Limits {
  /** Worker start plus the model's load and warm-up. A hanging load ends in `failed`. */
  readonly loadTimeoutMs: number;
  /** From the start request to the loop actually running. */
  readonly startTimeoutMs: number;
  /** How long a loop may take to honour stop before its worker is terminated (`killed`). */
  readonly stopDeadlineMs: number;
  /** How long the model's session-end hook may run before the worker is terminated. */
  readonly cleanupTimeoutMs: number;
  /** How long the worker may take to release the model at shutdown before it is terminated. */
  readonly closeTimeoutMs: number;
  /** How long a running session survives without its owner connected before it is stopped (`orphaned`). */
  readonly orphanTimeoutMs: number;
  /** Silence from a loaded worker after which it counts as wedged and is replaced. */
  readonly heartbeatTimeoutMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  loadTimeoutMs: 120_000, // a real model on a cold disk and a cold GPU can take a minute
  startTimeoutMs: 10_000,
  stopDeadlineMs: 5_000, // the reference runtime waits forever; five seconds is long for one frame
  cleanupTimeoutMs: 5_000,
  closeTimeoutMs: 5_000,
  orphanTimeoutMs: 30_000, // the reference runtime's value
  heartbeatTimeoutMs: 30_000, // one inference of a large model may hold the worker's thread for seconds
};

export interface RuntimeContext {
  readonly limits: Limits;
  readonly model: ModelInfo | null;
  readonly session: SessionRecord | null;
  /** The reason the current session is being stopped, once a stop has been accepted. */
  readonly stopReason: EndReason | null;
  readonly lastEnd: SessionEnd | null;
  readonly loadError: ErrorValue | null;
  readonly shutdownRequested: boolean;
  /** The session owner's connection is gone (the transport says so); see `orphanTimeout`. */
  readonly ownerAway: boolean;
  /** Worker generations started (1 after boot; grows only after a kill or a crash). */
  readonly workerStarts: number;
  /** How long the worker had been silent at the watchdog's last probe (re-arms the probe for the rest). */
  readonly workerSilentMs: number;
  readonly sessionsStarted: number;
}

/** A command already checked against the model's schema (by the runtime, before the chart). */
export type CheckedCommand =
  | { readonly ok: true; readonly name: string; readonly args: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly error: ErrorValue };

/** Events from callers (the runtime API, hence the transport). Each carries a request id for the reply. */
export type RequestEvent =
  | { type: 'session.start'; requestId: string; owner: string; sessionId: string; subject?: RequestSubject }
  /** A user (token `sub`) takes control of its session back, e.g. after a reconnect. */
  | { type: 'session.resume'; requestId: string; sub: string }
  | { type: 'session.stop'; requestId: string; owner?: string; reason?: EndReason }
  | { type: 'session.command'; requestId: string; owner: string; command: CheckedCommand };

/** Events from the inference actor. */
export type WorkerEvent =
  | { type: 'worker.ready'; model: ModelInfo }
  | { type: 'worker.failed'; error: ErrorValue }
  /**
   * The answer to the watchdog's `worker.probe`: how long since the worker's last heartbeat.
   * Heartbeats themselves stay in the actor (one a second would be most of the chart's events).
   */
  | { type: 'worker.liveness'; silentMs: number }
  | { type: 'worker.session.started'; sessionId: string }
  | { type: 'worker.session.ended'; sessionId: string; reason: EndReason; error?: ErrorValue }
  | { type: 'worker.session.cleaned'; sessionId: string }
  | { type: 'worker.closed' }
  | { type: 'worker.exited'; error: ErrorValue };

export type ControlEvent = { type: 'runtime.shutdown' } | { type: 'runtime.reload' };

/** The owner's presence, as the transport sees its connections. */
export type PresenceEvent = { type: 'owner.left'; sessionId: string } | { type: 'owner.returned'; sessionId: string };

export type RuntimeEvent = RequestEvent | WorkerEvent | ControlEvent | PresenceEvent;

/** What the chart emits to whoever embeds it (`actor.on(...)`). */
export type RuntimeEmitted =
  | { type: 'request.accepted'; requestId: string; sessionId?: string }
  | { type: 'request.refused'; requestId: string; error: ErrorValue }
  | { type: 'session.began'; session: SessionRecord }
  | { type: 'session.finished'; end: SessionEnd };

/** What the chart tells the inference actor. */
export type InferenceInput =
  | { type: 'session.start'; sessionId: string }
  | { type: 'session.stop'; sessionId: string; reason: EndReason }
  | { type: 'session.command'; sessionId: string; requestId: string; name: string; args: Readonly<Record<string, unknown>> }
  | { type: 'worker.close' }
  /** The watchdog asks the actor how long the worker has been silent (answered `worker.liveness`). */
  | { type: 'worker.probe' };

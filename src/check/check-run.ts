/**
 * What every step of `framehost check` reads and writes: the options with their defaults, the
 * model under check, its journals, and the results reported so far.
 */
import type { Logger } from 'pino';
import { createRuntime, type Runtime } from '../runtime/runtime.ts';
import type { ErasedModel } from '../model/api.ts';
import type { CreateSessionOptions } from '../gpu/session.ts';
import { DEFAULT_LIMITS, type Limits } from '../machines/types.ts';
import type { NarrowOptions } from './narrow.ts';
import type { CheckJournals } from './journals.ts';
import type { SeenFrame, SessionProbe } from './probe.ts';

export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  readonly step: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** More lines under the result (what narrowing found, where the journal is). */
  readonly notes?: readonly string[];
}

export interface CheckOptions {
  readonly model?: string;
  readonly modelOptions?: Readonly<Record<string, unknown>>;
  readonly ort?: CreateSessionOptions;
  readonly log: Logger;
  /** The runtime's stop deadline (default 5000 ms, as `serve`). */
  readonly stopDeadlineMs?: number;
  /** How long to wait for the first frame (default 10 s). */
  readonly firstFrameTimeoutMs?: number;
  /** Window over which the frame rate is measured (default 1000 ms). */
  readonly rateWindowMs?: number;
  /** Fail below this rate (default 1 frame/s). */
  readonly minFps?: number;
  /** Random commands in the isolation run (default 30). */
  readonly randomCommands?: number;
  readonly seed?: number;
  /** Frames compared between sessions (default 3). */
  readonly compareFrames?: number;
  /** Time allowed for finding the command a leak starts with (default 20 s). */
  readonly narrowBudgetMs?: number;
}

/** A runtime freshly loaded for the check, with its wall time or why it did not load. */
export interface FreshLoad {
  readonly runtime: Runtime;
  readonly wallMs: number;
  readonly error?: string;
}

/** Frames from a model with input tracks are compared once its input has settled. */
const INPUT_SETTLE_MS = 300;

export const ms = (n: number): string => `${Math.round(n)} ms`;
export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** How a session's probe ended, or that it runs on. */
export const endText = (p: SessionProbe): string =>
  p.end ? `the session ended by itself (${p.end.reason}${p.end.error ? `, ${p.end.error.code}: ${p.end.error.message}` : ''})` : 'the session is running';

/** Wait until the runtime is idle (after a kill, a fresh worker loads the model first). */
export async function idle(runtime: Runtime, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (runtime.phase() !== 'idle') {
    if (runtime.phase() === 'failed' || runtime.phase() === 'shutdown' || performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** One check of one model: its settings, the results so far, and fresh loads of the model. */
export class CheckRun {
  readonly results: CheckResult[] = [];
  readonly limits: Partial<Limits>;
  /** Frames compared between sessions. */
  readonly compare: number;
  readonly firstFrameTimeout: number;
  /** Whether the model has input tracks (fed while its sessions run). */
  readonly tracked: boolean;
  readonly deterministic: boolean;

  constructor(
    readonly opts: CheckOptions,
    readonly url: string,
    readonly def: ErasedModel,
    readonly journals: CheckJournals,
    private readonly report: (r: CheckResult) => void,
  ) {
    this.limits = { stopDeadlineMs: opts.stopDeadlineMs ?? DEFAULT_LIMITS.stopDeadlineMs };
    this.compare = opts.compareFrames ?? 3;
    this.firstFrameTimeout = opts.firstFrameTimeoutMs ?? 10_000;
    this.tracked = Object.keys(def.inputs ?? {}).length > 0;
    this.deterministic = def.deterministic !== false;
  }

  get inputs(): NonNullable<ErasedModel['inputs']> {
    return this.def.inputs ?? {};
  }

  add(step: string, status: CheckStatus, detail: string, notes?: readonly string[]): void {
    const r = { step, status, detail, ...(notes && notes.length > 0 ? { notes } : {}) };
    this.results.push(r);
    this.report(r);
  }

  /** What narrow.ts needs to replay a journal through fresh loads of the same model. */
  narrowOptions(): NarrowOptions {
    const opts = this.opts;
    return {
      model: this.url,
      modelOptions: opts.modelOptions ?? {},
      log: opts.log,
      ...(opts.ort ? { ort: opts.ort } : {}),
      ...(opts.narrowBudgetMs !== undefined ? { budgetMs: opts.narrowBudgetMs } : {}),
    };
  }

  /** A fresh load of the model, its sessions journaled when `record`. */
  async fresh(record = false): Promise<FreshLoad> {
    const t0 = performance.now();
    const runtime = await createRuntime({
      model: this.url,
      modelOptions: this.opts.modelOptions ?? {},
      logger: this.opts.log,
      limits: this.limits,
      ...(this.opts.ort ? { ort: this.opts.ort } : {}),
      ...(record ? this.journals.recordOption() : {}),
    });
    if (record) this.journals.listen(runtime);
    try {
      await runtime.ready();
      return { runtime, wallMs: performance.now() - t0 };
    } catch (err) {
      return { runtime, wallMs: performance.now() - t0, error: err instanceof Error ? err.message : String(err) };
    }
  }

  /** The frames a session is compared by: its first ones, or for tracked models the first after its input settled. */
  async firstFrames(probe: SessionProbe): Promise<SeenFrame[]> {
    if (!this.tracked) {
      await probe.waitFrames(this.compare, this.firstFrameTimeout);
      return probe.frames.slice(0, this.compare);
    }
    await new Promise((r) => setTimeout(r, INPUT_SETTLE_MS));
    const from = probe.frames.length;
    await probe.waitFrames(from + this.compare, this.firstFrameTimeout);
    return probe.frames.slice(from, from + this.compare);
  }
}

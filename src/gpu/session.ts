/**
 * Create an ONNX Runtime session the way framehost runs every model: provider selection
 * (providers.ts), a GPU session checked against the CPU on the same input (compare.ts), full
 * graph optimisation, and thread settings measured on the target machine (on the 2-core
 * development machine ORT's default spins its threads, burns every core and starves the event
 * loop and the socket; spinning is off here, and one core is left to everything else).
 */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import type { Logger } from 'pino';
import { errorValue, FramehostError } from '../errors.ts';
import { compareOutputs, probeFeeds, TOLERANCE, type OutputCheck, type TensorInfo } from './compare.ts';
import { describeAdapter, planProviders, type ProviderChoice, type ProviderName, type ProviderPlan } from './providers.ts';

export interface CreateSessionOptions {
  readonly provider?: ProviderChoice;
  /** Intra-op threads; default: cores − 1, between 1 and 4 (see defaultThreads). */
  readonly threads?: number;
  /** ORT's busy-wait between ops; off by default (see the module comment). */
  readonly spinning?: boolean;
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * The input a GPU session's first output is checked on against the CPU's. Default: made-up
   * feeds (seeded floats, symbolic dimensions 32; compare.ts). Give a real input where made-up
   * values mean nothing (indices, a chaotic simulation); `false` skips the check.
   */
  readonly probe?: Readonly<Record<string, ort.Tensor>> | false;
}

// Declared in compare.ts, which reads it to make up feeds, so that the two need not import each other.
export type { TensorInfo } from './compare.ts';

export interface OnnxSession {
  readonly session: ort.InferenceSession;
  /** The provider that runs it: cpu, webgpu, cuda or tensorrt. */
  readonly provider: ProviderName;
  /** What runs it, as the system names it (providers.ts describeAdapter). */
  readonly adapter: string;
  /** Why this provider: the plan's reason, or what made it fall back. */
  readonly reason: string;
  /** The GPU's check against the CPU that decided (also on a CPU session that fell back after a failed one); absent when none ran. */
  readonly check?: OutputCheck;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly threads: number;
}

/**
 * Intra-op threads: every core but one, at most four. The spare core is for the event loop,
 * the socket and (on one machine) the client: on the 2-core machine here one ORT thread
 * delivered 291 frames/s at 256² and 63 at 512², against 221 and 55 with two threads (the two
 * threads' bare loop is not faster than one's once anything else runs; docs/performance.md).
 */
export function defaultThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

function describe(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return meta.map((m) =>
    m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] },
  );
}

/** Opens one ORT session on one provider. Replaced in tests only where a GPU cannot exist. */
export type OpenSession = (source: string | Uint8Array, provider: ProviderName, options: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession>;

export const openOrtSession: OpenSession = (source, provider, options) =>
  ort.InferenceSession.create(source as never, { ...options, executionProviders: [provider] });

function sessionOptions(opts: CreateSessionOptions, threads: number): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    executionMode: 'sequential',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    // Honoured by onnxruntime-node although the typings mention WebAssembly only.
    extra: { session: { intra_op: { allow_spinning: opts.spinning ? '1' : '0' } } },
  };
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);

/** Runs the probe on the GPU session and on a CPU one; returns the check and the CPU session. */
async function checkAgainstCpu(
  gpu: ort.InferenceSession,
  source: string | Uint8Array,
  opts: CreateSessionOptions,
  options: ort.InferenceSession.SessionOptions,
  open: OpenSession,
): Promise<{ check: OutputCheck; cpu: ort.InferenceSession } | undefined> {
  const feeds = opts.probe === false ? undefined : (opts.probe ?? probeFeeds(describe(gpu.inputMetadata)));
  if (!feeds) return undefined;
  const cpu = await open(source, 'cpu', options);
  const [g, c] = [await gpu.run(feeds), await cpu.run(feeds)];
  return { check: compareOutputs(g, c), cpu };
}

function finish(session: ort.InferenceSession, provider: ProviderName, reason: string, threads: number, check?: OutputCheck): OnnxSession {
  return {
    session,
    provider,
    adapter: describeAdapter(provider),
    reason,
    ...(check ? { check } : {}),
    inputs: describe(session.inputMetadata),
    outputs: describe(session.outputMetadata),
    threads,
  };
}

/** Environment variables are the CLI's business (`serve` maps FRAMEHOST_PROVIDER and FRAMEHOST_ORT_THREADS onto these). */
export function createOnnxSession(source: string | Uint8Array, opts: CreateSessionOptions, log: Logger): Promise<OnnxSession> {
  return createPlannedSession(source, planProviders(opts.provider ?? 'auto'), opts, log);
}

/** The same, on a given plan and opener (tests: `auto` as on a GPU machine; a stand-in GPU). */
export async function createPlannedSession(source: string | Uint8Array, plan: ProviderPlan, opts: CreateSessionOptions, log: Logger, open: OpenSession = openOrtSession): Promise<OnnxSession> {
  const threads = opts.threads && opts.threads > 0 ? Math.floor(opts.threads) : defaultThreads();
  const options = sessionOptions(opts, threads);
  // ONNX Runtime's session creation is one synchronous native call of a second or more for a real
  // network, during which the worker's thread answers nothing: this line says when it begins.
  log.debug({ providers: plan.providers }, 'onnx runtime: creating the session');
  const chosen = await chooseSession(source, plan, opts, options, open, log);
  const s = finish(chosen.session, chosen.provider, chosen.reason, threads, chosen.check);
  log.info(
    { provider: s.provider, adapter: s.adapter, reason: s.reason, threads, ...(s.check ? { check: s.check } : {}) },
    `onnx runtime: using the ${s.provider.toUpperCase()} execution provider (${s.adapter})`,
  );
  return s;
}

interface Chosen {
  readonly session: ort.InferenceSession;
  readonly provider: ProviderName;
  readonly reason: string;
  readonly check?: OutputCheck;
}

/**
 * Tries the plan's providers in order. A GPU provider that fails to start, or whose first
 * output disagrees with the CPU's, is reported in one warning line; under `auto` the CPU takes
 * over, otherwise a failure ends the load (provider_failed) and a disagreement is only reported.
 */
async function chooseSession(source: string | Uint8Array, plan: ProviderPlan, opts: CreateSessionOptions, options: ort.InferenceSession.SessionOptions, open: OpenSession, log: Logger): Promise<Chosen> {
  let reason = plan.reason;
  for (const provider of plan.providers) {
    if (provider === 'cpu') return { session: await open(source, 'cpu', options), provider, reason };
    let session: ort.InferenceSession;
    try {
      session = await open(source, provider, options);
    } catch (err) {
      const why = `the ${provider} provider failed to start: ${messageOf(err)}`;
      if (!plan.fallback) throw new FramehostError('provider_failed', errorValue('provider_failed', why).message, { cause: err });
      log.warn({ provider, err: messageOf(err) }, `onnx runtime: ${why}; falling back to the CPU`);
      reason = `fell back from ${provider}: it failed to start`;
      continue;
    }
    const compared = await checkAgainstCpu(session, source, opts, options, open);
    if (!compared) {
      log.warn({ provider }, `onnx runtime: ${provider}'s output not compared with the CPU's (no probe input could be made; pass createSession's probe option)`);
      return { session, provider, reason };
    }
    const { check, cpu } = compared;
    if (check.ok) {
      await cpu.release();
      return { session, provider, reason, check };
    }
    const why = `${provider}'s first output differs from the CPU's on the same input (output ${check.output}: max |diff| ${check.maxAbsDiff}, ${check.outside} of ${check.values} values outside the tolerance ${JSON.stringify(TOLERANCE)})`;
    if (!plan.fallback) {
      log.warn({ provider, check }, `onnx runtime: ${why}; keeping ${provider} as requested`);
      await cpu.release();
      return { session, provider, reason, check };
    }
    log.warn({ provider, check }, `onnx runtime: ${why}; falling back to the CPU`);
    await session.release();
    return { session: cpu, provider: 'cpu', reason: `fell back from ${provider}: its output differed from the CPU's`, check };
  }
  throw new FramehostError('provider_failed', 'no execution provider to try');
}
